"""Real services for the whole session; each test gets its own database, bus prefix and queue.

The session starts Temporal's dev server, FerretDB and RabbitMQ in a temporary folder
on free ports (``AGORA_TEST_STACK=<home>`` reuses a stack that ``agora up`` started
there instead), and stops what it started at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.client import Client

from api.__main__ import serving
from api.app import create_app
from bus import EventBus, open_bus
from cli.stack import Ports, Stack, free_port
from core.logging import JsonFormatter, RedactSecrets
from core.settings import Settings
from core.temporal import connect_temporal
from persistence import Database, open_database
from tests.helpers import app_client, leaked_credentials
from workers.registry import build_workers

T = TypeVar("T")


ISSUED: set[str] = set()
"""Every credential the suite made: tokens, stream tickets, admin tokens, signing secrets."""


def _remember_credentials() -> None:
    """Wrap the two places credentials are made, for the whole session."""
    from core.security import TokenCodec
    from persistence import StreamTicketRepository

    issue, put = TokenCodec.issue, StreamTicketRepository.put

    def remembered_issue(self, *args, **kwargs):
        issued = issue(self, *args, **kwargs)
        ISSUED.add(issued.token)
        return issued

    async def remembered_put(self, ticket, *args, **kwargs):
        ISSUED.add(ticket)
        return await put(self, ticket, *args, **kwargs)

    TokenCodec.issue = remembered_issue
    StreamTicketRepository.put = remembered_put


FASTAPI_CALLABLE_CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)
"""FastAPI's module-level LRU caches (4,096 entries each) that classify a dependency's
callable. They key on the callable itself, so every app a test builds stays alive through
its closures; by the 350th test the heap held about a hundred apps (660 MB), a full gc
pass stopped every thread for 1.9 s, and a workflow activation past the SDK's 2 s deadlock
detector failed a query in CI."""


@pytest.fixture(autouse=True)
def forget_each_tests_app() -> Iterator[None]:
    """After each test, let its app go (one app per process in production: no growth)."""
    yield
    import fastapi.dependencies.models as fastapi_models

    caches = [getattr(fastapi_models, name, None) for name in FASTAPI_CALLABLE_CACHES]
    for cache in filter(None, caches):
        cache.cache_clear()
    if not any(caches):  # renamed in a FastAPI upgrade: the heap grows again, say so
        logging.getLogger("tests").warning(
            "FastAPI's callable caches are gone: %s", FASTAPI_CALLABLE_CACHES
        )


@pytest.fixture(scope="session", autouse=True)
def no_credential_in_any_log(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """After the whole suite: no credential it issued is in any log the stack or a test's
    processes wrote, nor in what the suite's own processes logged (through the same
    redacting handler as production)."""
    _remember_credentials()
    suite_log = tmp_path_factory.getbasetemp() / "suite.log"
    handler = logging.FileHandler(suite_log)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    logs = [
        *stack.home.joinpath("logs").glob("*.log"),
        *tmp_path_factory.getbasetemp().rglob("*.log"),
    ]
    found = leaked_credentials(logs, ISSUED)
    assert not found, f"credentials found in logs: {found}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reuse = os.environ.get("AGORA_TEST_STACK")
    if reuse:
        yield Stack.load(Path(reuse))
        return
    home = tmp_path_factory.mktemp("stack")
    started = Stack(home, Ports.free(), with_ui=False, with_app=False)
    try:
        started.up()
        yield started
    finally:
        started.down()


def _issued(secret: str) -> str:
    ISSUED.add(secret)
    return secret


@pytest.fixture
def settings(stack: Stack) -> Settings:
    env = stack.env()
    unique = uuid.uuid4().hex[:12]
    return Settings(
        env="test",
        mongodb_uri=env["AGORA_MONGODB_URI"],
        mongodb_db=f"test_{unique}",
        amqp_url=env["AGORA_AMQP_URL"],
        bus_prefix=f"test.{unique}",
        temporal_address=env["AGORA_TEMPORAL_ADDRESS"],
        task_queue=f"test-{unique}",
        llm_task_queue=f"test-llm-{unique}",
        admin_token=_issued(f"admin-{unique}-{uuid.uuid4().hex}"),
        token_secret=_issued(f"secret-{uuid.uuid4().hex}"),
        agent_offline_after_seconds=60,
        # bursts in these tests are the point; the limits' own tests set small bounds
        rate_per_token_per_second=10_000,
        rate_burst_per_token=10_000,
        messages_per_agent_per_minute=1_000_000,
        message_burst_per_agent=10_000,
        a2a_allowed_hosts=["127.0.0.1"],  # the suite's own A2A servers and push receivers
        # the worker runs unsandboxed; the suite runs workflow code in the SDK's sandbox,
        # so a non-deterministic call there fails the tests
        workflow_sandbox=True,
    )


@pytest_asyncio.fixture(scope="session")
async def temporal_client(stack: Stack) -> Client:
    return await connect_temporal(Settings(temporal_address=stack.env()["AGORA_TEMPORAL_ADDRESS"]))


@pytest_asyncio.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = await open_database(settings)
    try:
        yield database
    finally:
        await database.client.drop_database(settings.mongodb_db)
        await database.close()


@pytest_asyncio.fixture
async def bus(settings: Settings) -> AsyncIterator[EventBus]:
    bus = await open_bus(settings)
    try:
        yield bus
    finally:
        await bus.close()


@pytest_asyncio.fixture
async def worker(
    temporal_client: Client, settings: Settings, database: Database, bus: EventBus
) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as running:
        for worker in build_workers(temporal_client, settings, database, bus):
            await running.enter_async_context(worker)
        yield


@pytest_asyncio.fixture
async def api(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    """The API with an in-process worker behind it."""
    async with app_client(settings) as client:
        yield client


@pytest_asyncio.fixture
async def api_only(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The API with no worker: the test runs its own (say, a subprocess it kills)."""
    async with app_client(settings) as client:
        yield client


@pytest_asyncio.fixture
async def server(settings: Settings, worker: None) -> AsyncIterator[str]:
    """The API served by uvicorn on a free port (for WebSocket streams); yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        **{**serving(settings), "host": "127.0.0.1", "port": port},  # as python -m api serves
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    await eventually(_value_of(lambda: served.started), bool, timeout=20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task


def _value_of(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return read()

    return probe


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess (``python -m workers``) these settings."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, dict):
            value = json.dumps(
                {
                    k: v.get_secret_value() if hasattr(v, "get_secret_value") else v
                    for k, v in value.items()
                }
            )
        elif isinstance(value, list):
            value = json.dumps(value)
        env[f"AGORA_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until ``until`` holds; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value
