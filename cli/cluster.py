"""The production-shaped local topology (``make cluster-up`` / ``cluster-down``).

Two API processes behind HAProxy on one port (WebSocket upgrades, health checks on
``/readyz``), two worker processes, and a three-node RabbitMQ cluster on loopback (one
node name and port each, a shared Erlang cookie generated into the cluster's home) that
the processes reach through HAProxy's AMQP port, with quorum queues. PostgreSQL, FerretDB
and the Temporal dev server are the single ones of ``make up`` (``cli/stack.py``:
FerretDB with ``--telemetry=disable``, nothing calls outside the machine); a
deployment puts a Temporal cluster and a MongoDB replica set there (README, Cluster).

Every part binds to 127.0.0.1, keeps its data under the cluster's home (``.agora/cluster``
for ``make cluster-up``, a temporary folder in the tests) and is stopped by ``down``. The
drills kill and restart single parts by name (``api-1``, ``worker-2``, ``rabbitmq-3``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cli.stack import (
    RABBITMQ_BIN,
    Ports,
    Service,
    Stack,
    StackError,
    amqp_answers,
    free_port,
    port_open,
    rabbitmq_node_env,
)

NODES = 3
REPLICAS = 2


def _single_defaults() -> Ports:
    return Ports(
        temporal=7300,
        temporal_ui=8300,
        postgres=5500,
        mongodb=27100,
        amqp=5700,
        api=8100,
        ferretdb_debug=8188,
        rabbitmq_dist=0,
        worker_metrics=0,
    )


@dataclass
class ClusterPorts:
    single: Ports = field(default_factory=_single_defaults)
    """The single parts' ports, as ``Stack`` knows them; its ``api`` and ``amqp`` are
    HAProxy's, the one port of each that clients use."""
    apis: list[int] = field(default_factory=lambda: [8101, 8102])
    nodes: list[int] = field(default_factory=lambda: [5701, 5702, 5703])
    dist: list[int] = field(default_factory=lambda: [25701, 25702, 25703])
    worker_metrics: list[int] = field(default_factory=lambda: [9471, 9472])

    @property
    def api(self) -> int:
        return self.single.api

    @property
    def amqp(self) -> int:
        return self.single.amqp

    @classmethod
    def free(cls) -> ClusterPorts:
        def some(n: int) -> list[int]:
            return [free_port() for _ in range(n)]

        return cls(
            Ports.free(),
            apis=some(REPLICAS),
            nodes=some(NODES),
            dist=some(NODES),
            worker_metrics=some(REPLICAS),
        )

    @classmethod
    def from_json(cls, saved: dict) -> ClusterPorts:
        return cls(Ports(**saved.pop("single")), **saved)


@dataclass
class Cluster:
    home: Path
    ports: ClusterPorts = field(default_factory=ClusterPorts)
    with_ui: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    """More ``AGORA_`` settings for every Agora process of the cluster (the tests')."""

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self.stack = Stack(
            self.home,
            self.ports.single,
            amqp_url=f"amqp://guest:guest@127.0.0.1:{self.ports.amqp}/",
            with_ui=self.with_ui,
            with_app=False,
        )

    # ---- names and settings -----------------------------------------------------------

    @property
    def parts(self) -> list[str]:
        """Every part this module starts, in the order ``up`` starts them."""
        return [
            *(f"rabbitmq-{i}" for i in range(1, NODES + 1)),
            "haproxy",
            *(f"worker-{i}" for i in range(1, REPLICAS + 1)),
            *(f"api-{i}" for i in range(1, REPLICAS + 1)),
        ]

    def node_name(self, i: int) -> str:
        return f"agora{self.ports.amqp}n{i}@localhost"

    @property
    def node_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports.nodes]

    def env(self) -> dict[str, str]:
        """What a client of the cluster (and every Agora process of it) runs with."""
        single = self.stack.env()
        for per_worker in ("AGORA_WORKER_METRICS_PORT", "AGORA_WORKER_READY_FILE"):
            single.pop(per_worker)
        return (
            single
            | {
                "AGORA_QUEUE_TYPE": "quorum",
                "AGORA_API_REPLICAS": str(REPLICAS),
                # four processes share the one FerretDB's pool (see mongodb_max_pool_size)
                "AGORA_MONGODB_MAX_POOL_SIZE": "10",
                "AGORA_AMQP_NODES": json.dumps(self.node_addresses),
            }
            | self.settings
        )

    @property
    def erlang_home(self) -> Path:
        """The HOME of every node and ``rabbitmqctl`` call: it holds the shared cookie."""
        home = self.home / "erlang"
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            home.mkdir(parents=True, exist_ok=True)
            cookie.write_text(secrets.token_hex(20))
            cookie.chmod(0o400)
        return home

    # ---- the parts --------------------------------------------------------------------

    def service(self, name: str) -> Service:
        kind, _, number = name.partition("-")
        if kind == "rabbitmq":
            return self.rabbitmq(int(number))
        if kind == "haproxy":
            return self.haproxy()
        if kind == "worker":
            return self.worker(int(number))
        if kind == "api":
            return self.api(int(number))
        return getattr(self.stack, name)()

    def _node_env(self, i: int) -> dict[str, str]:
        data = self.home / "data" / f"rabbitmq-{i}"
        data.mkdir(parents=True, exist_ok=True)
        plugins = data / "enabled_plugins"
        if not plugins.exists():
            plugins.write_text("[].\n")
        # a minority partition stops serving rather than diverge
        (data / "rabbitmq.conf").write_text("cluster_partition_handling = pause_minority\n")
        return rabbitmq_node_env(data, self.node_name(i), self.ports.dist[i - 1]) | {
            "HOME": str(self.erlang_home),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports.nodes[i - 1]),
        }

    def rabbitmqctl(self, i: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node_name(i), *args],
            env={**os.environ, **self._node_env(i)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def rabbitmq(self, i: int) -> Service:
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists():
            raise StackError("rabbitmq", "rabbitmq-server is not installed: run 'make setup'")
        port = self.ports.nodes[i - 1]
        return Service(
            f"rabbitmq-{i}",
            port,
            [str(server)],
            lambda: amqp_answers(port),
            env=self._node_env(i),
            stop=lambda: self.rabbitmqctl(i, "stop"),
        )

    def _join(self, i: int) -> None:
        """Node ``i`` joins node 1's cluster, once (a restarted node rejoins by itself)."""
        joined = self.home / "data" / f"rabbitmq-{i}" / "joined"
        if i == 1 or joined.exists():
            return
        for args in (("stop_app",), ("join_cluster", self.node_name(1)), ("start_app",)):
            done = self.rabbitmqctl(i, *args)
            if done.returncode != 0:
                raise StackError(f"rabbitmq-{i}", f"{' '.join(args)} failed", done.stderr[-2000:])
        joined.write_text(self.node_name(1))

    def haproxy_config(self) -> Path:
        apis = "\n".join(
            f"    server api-{n} 127.0.0.1:{port} check"
            for n, port in enumerate(self.ports.apis, start=1)
        )
        nodes = "\n".join(
            f"    server rabbitmq-{n} 127.0.0.1:{port} check"
            for n, port in enumerate(self.ports.nodes, start=1)
        )
        path = self.home / "run" / "haproxy.cfg"
        path.write_text(
            f"""# written by cli/cluster.py; every listener on 127.0.0.1
global
    maxconn 4000
    stats socket {self.home / "run" / "haproxy.sock"} mode 600 level admin

defaults
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    retries 3
    option redispatch
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions

frontend api
    mode http
    bind 127.0.0.1:{self.ports.api}
    default_backend apis

backend apis
    mode http
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{apis}

frontend amqp
    mode tcp
    bind 127.0.0.1:{self.ports.amqp}
    default_backend nodes

backend nodes
    mode tcp
    balance leastconn
{nodes}
"""
        )
        return path

    def haproxy(self) -> Service:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise StackError("haproxy", "haproxy is not installed: run 'make setup'")
        return Service(
            "haproxy",
            self.ports.api,
            [binary, "-f", str(self.haproxy_config()), "-db"],
            lambda: port_open(self.ports.api) and port_open(self.ports.amqp),
            start_timeout=20,
        )

    def _ready_file(self, i: int) -> Path:
        return self.home / "run" / f"worker-{i}.ready"

    def worker(self, i: int) -> Service:
        name = f"worker-{i}"
        env = self.env() | {
            "AGORA_WORKER_METRICS_PORT": str(self.ports.worker_metrics[i - 1]),
            "AGORA_WORKER_READY_FILE": str(self._ready_file(i)),
        }

        def ready() -> bool:
            pid = self.stack.owned_pid(name)
            try:
                return pid is not None and self._ready_file(i).read_text().strip() == str(pid)
            except OSError:
                return False

        return Service(name, 0, [sys.executable, "-m", "workers"], ready, env=env)

    def api(self, i: int) -> Service:
        port = self.ports.apis[i - 1]
        env = self.env() | {"AGORA_API_PORT": str(port)}

        def ready() -> bool:
            """Ready when it answers ``/readyz`` and the balancer sends it requests: HAProxy
            marks a server up only after two passing checks, a second or two later."""
            import httpx

            try:
                answers = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code
            except httpx.HTTPError:
                return False
            state = self.balancer_states().get(f"apis/api-{i}")
            return answers == 200 and (state is None or state == "UP")

        return Service(
            f"api-{i}", port, [sys.executable, "-m", "api"], ready, env=env, start_timeout=60
        )

    def balancer_states(self) -> dict[str, str]:
        """Each server's state as HAProxy sees it, by ``backend/server`` (``apis/api-1``:
        ``UP``, ``DOWN``, or ``UP 1/2`` while checks are under way); empty when HAProxy
        does not run. Read from its admin socket (``show stat``)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.home / "run" / "haproxy.sock"))
                sock.sendall(b"show stat\n")
                data = b"".join(iter(lambda: sock.recv(65536), b""))
        except OSError:
            return {}
        rows = csv.DictReader(io.StringIO(data.decode().removeprefix("# ")))
        return {
            f"{row['pxname']}/{row['svname']}": row["status"]
            for row in rows
            if row.get("svname") not in (None, "FRONTEND", "BACKEND")
        }

    # ---- life cycle -------------------------------------------------------------------

    def save(self) -> None:
        (self.home / "cluster.json").write_text(json.dumps(asdict(self.ports)))

    @classmethod
    def load(cls, home: Path) -> Cluster:
        saved = home / "cluster.json"
        ports = (
            ClusterPorts.from_json(json.loads(saved.read_text()))
            if saved.exists()
            else ClusterPorts()
        )
        return cls(home, ports)

    def start(self, name: str, progress: Callable[[str], None] = lambda _: None) -> str:
        outcome = self.stack.start(self.service(name), progress)
        if name.startswith("rabbitmq-"):
            self._join(int(name.rpartition("-")[2]))
        return outcome

    def up(self, progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
        self.save()
        outcome = {}
        for name in ("temporal", "postgres", "ferretdb", *self.parts):
            outcome[name] = self.start(name, progress)
        self.stack.write_env_file()
        env_file = self.home / "env"
        single = self.stack.env()
        extra = {k: v for k, v in self.env().items() if k not in single}
        with env_file.open("a") as out:
            out.writelines(f"export {key}={shlex.quote(value)}\n" for key, value in extra.items())
        return outcome

    def kill(self, name: str) -> int:
        """SIGKILL a part's process group (a crash, not a stop); its pid."""
        pid = self.stack.owned_pid(name)
        if pid is None:
            raise StackError(name, "is not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.stack.owned_pid(name) is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        self.stack.pid_path(name).unlink(missing_ok=True)
        return pid

    def stop(self, name: str) -> bool:
        service = self.service(name)
        return self.stack.stop_service(name, service.stop)

    def down(self) -> list[str]:
        stopped = [name for name in reversed(self.parts) if self.stop(name)]
        return stopped + self.stack.down()

    def status(self) -> dict[str, str]:
        """Each part: running, stopped, or answering without us; and what is degraded."""
        out = {}
        base = self.stack.status()
        for name in ("temporal", "postgres", "ferretdb"):
            out[name] = base[name]
        for name in self.parts:
            pid = self.stack.owned_pid(name)
            port = self.service(name).port
            answering = amqp_answers(port) if name.startswith("rabbitmq") else port_open(port)
            if pid and (answering or not port):
                out[name] = f"running (pid {pid})"
            elif pid:
                out[name] = f"starting (pid {pid})"
            else:
                out[name] = "stopped"
        return out

    def degraded(self, status: dict[str, str] | None = None) -> list[str]:
        """The parts that do not run, each with what still serves in its place."""
        status = status or self.status()
        words = []
        for kind, count in (("rabbitmq", NODES), ("worker", REPLICAS), ("api", REPLICAS)):
            down = [n for n in status if n.startswith(kind + "-") and status[n] == "stopped"]
            if down:
                left = count - len(down)
                serving = left > count // 2 if kind == "rabbitmq" else left > 0
                say = "serving" if serving else "NOT serving"
                words.append(f"{', '.join(down)} down: {left} of {count} {kind} left, {say}")
        return words
