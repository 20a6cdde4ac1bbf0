"""Small helpers the API tests share."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx
import websockets


@contextlib.asynccontextmanager
async def app_client(settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process with its lifespan run."""
    from api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agora.test") as client:
            yield client


def in_seconds(seconds: float) -> str:
    """An ISO time ``seconds`` from now (deadlines)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def balance(api: httpx.AsyncClient, agent: Agent, headers: dict | None = None) -> int:
    """The agent's balance as the API shows it (to the agent itself by default)."""
    response = await api.get(f"/v1/accounts/{agent.agent_id}", headers=headers or agent.headers)
    assert response.status_code == 200, response.text
    return response.json()["balance"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Agent:
    agent_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def introduce(api: httpx.AsyncClient, admin: dict, name: str, **body) -> Agent:
    """An agent with a unique id (tests share one Temporal server, so workflow ids must differ)."""
    agent_id = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/v1/agents", json={"agent_id": agent_id, "name": name} | body, headers=admin
    )
    assert response.status_code == 201, response.text
    return Agent(agent_id, response.json()["token"])


async def group(api: httpx.AsyncClient, owner: Agent, *others: Agent, **body) -> dict:
    response = await api.post(
        "/v1/chats",
        json={"type": "group", "participants": [a.agent_id for a in others]} | body,
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


class Stream:
    """An agent's live stream over a real WebSocket."""

    def __init__(self, base_url: str, agent: Agent) -> None:
        self.url = base_url.replace("http", "ws", 1) + f"/v1/agents/{agent.agent_id}/stream"
        self.agent = agent
        self.connection = None

    async def __aenter__(self) -> Stream:
        self.connection = await websockets.connect(
            self.url, additional_headers=self.agent.headers, open_timeout=10
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.connection.close()

    async def next(self, timeout: float = 15) -> dict:
        import asyncio

        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def until(self, predicate, timeout: float = 15) -> list[dict]:
        """Events received until one satisfies ``predicate`` (included)."""
        seen = []
        while True:
            event = await self.next(timeout)
            seen.append(event)
            if predicate(event):
                return seen


async def json_of(response: Awaitable[httpx.Response]):
    """The JSON body of a pending request (for ``eventually`` probes)."""
    return (await response).json()


async def value(value):
    """A plain value as an awaitable (for ``eventually`` probes over local state)."""
    return value


@contextlib.contextmanager
def worker_process(settings):
    """``python -m workers`` with the test's settings; its log goes to AGORA_TEST_WORKER_LOG."""
    from cli.stack import PROJECT_ROOT
    from tests.conftest import settings_env

    env = {**os.environ, **settings_env(settings)}
    log_path = os.environ.get("AGORA_TEST_WORKER_LOG")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


_RUN = re.compile(r"[A-Za-z0-9_-]{16,}")


def leaked_credentials(paths, credentials: set[str]) -> list[tuple[str, str]]:
    """(file, what) for each credential, or part of one, found in the files: a whole token,
    a JWT's payload or signature, a ticket or secret. Runs of token characters are
    collected once per file, so thousands of credentials are checked in one pass."""
    wanted: dict[str, str] = {}
    for credential in credentials:
        parts = credential.split(".")
        # a JWT's header is the same for every token: its payload and signature are its own
        for part in parts[1:] if len(parts) == 3 else [credential]:
            if len(part) >= 16:
                wanted[part] = credential[:12] + "..."
    found = []
    for path in paths:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for run in set(_RUN.findall(text)) & wanted.keys():
            found.append((str(path), wanted[run]))
    return found


async def dead_letter(bus, agent_id: str):
    """An event no consumer could handle: published to the agent's inbox, then rejected
    from it into the dead letters (as a stream does with a body it cannot read)."""
    import asyncio
    import time
    import uuid
    from datetime import UTC, datetime

    from bus.publisher import event_id_of
    from models.events import EventEnvelope

    event = EventEnvelope(
        event_id=str(uuid.uuid4()),
        type="test.unhandled",
        occurred_at=datetime.now(UTC),
        payload={},
        recipients=[agent_id],
    )
    await bus.publish(event)
    inbox = await bus.channel.get_queue(bus.topology.inbox_queue(agent_id))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = await inbox.get(no_ack=False, fail=False)
        if message is None:
            await asyncio.sleep(0.1)
        elif event_id_of(message.message_id) != event.event_id:
            await message.ack()
        else:
            await message.reject(requeue=False)
            return event
    raise AssertionError(f"{event.event_id} never reached the inbox of {agent_id}")


@contextlib.asynccontextmanager
async def served_on_loopback(app, port: int):
    """An ASGI app served by uvicorn on 127.0.0.1:``port`` until the block ends (the
    suite's own A2A agents and webhooks)."""
    import asyncio

    import uvicorn

    from tests.conftest import eventually

    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(served.serve())
    await eventually(lambda: asyncio.sleep(0, served.started), bool)
    try:
        yield
    finally:
        served.should_exit = True
        await task


class BrokerLink:
    """A TCP link to the broker that a test can cut, as a node's death cuts the clients
    connected to it; new connections go through again at once."""

    def __init__(self, amqp_url: str) -> None:
        from urllib.parse import urlsplit

        self._url = urlsplit(amqp_url)
        self._pairs: set = set()
        self._server = None

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return self._url._replace(netloc=self._url.netloc.rsplit(":", 1)[0] + f":{port}").geturl()

    async def __aenter__(self) -> BrokerLink:
        import asyncio

        async def pipe(reader, writer) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def link(client_reader, client_writer) -> None:
            broker_reader, broker_writer = await asyncio.open_connection(
                self._url.hostname, self._url.port
            )
            pair = (client_writer, broker_writer)
            self._pairs.add(pair)
            try:
                await asyncio.gather(
                    pipe(client_reader, broker_writer), pipe(broker_reader, client_writer)
                )
            finally:
                self._pairs.discard(pair)

        self._server = await asyncio.start_server(link, "127.0.0.1", 0)
        return self

    def cut(self) -> None:
        """Close every connection that goes through the link, both ends."""
        for pair in list(self._pairs):
            for writer in pair:
                writer.transport.abort()

    async def __aexit__(self, *_: object) -> None:
        self.cut()
        self._server.close()
