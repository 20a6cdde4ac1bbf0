"""``create_app()``: the FastAPI application and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import audit
from api.a2a import CardSigner, ReplyWatch, sweep_left_tasks
from api.console import mount_console
from api.credentials import CredentialCache
from api.deps import declare_access
from api.errors import ServerErrors, document_errors, install_error_handlers
from api.limits import RequestLimits, message_buckets
from api.mcp_server import RequireBearer, build_server, in_process
from api.metrics import install_metrics
from api.routes import (
    a2a,
    accounts,
    agents,
    chats,
    events,
    floor,
    health,
    messages,
    skills,
    stream,
    tasks,
)
from api.writes import StoreWrites
from bus import EventBus, open_bus, watch_revocations
from core.logging import configure_logging, correlation_id
from core.security import TokenCodec
from core.settings import Settings, get_settings, secrets_of
from core.temporal import connect_temporal
from core.tracing import configure_tracing
from persistence import Database, open_database

log = logging.getLogger("agora.api")


@dataclass
class Dependencies:
    """The clients, opened once; a dependency that is down is retried in the background."""

    settings: Settings
    temporal: Client | None = None
    database: Database | None = None
    bus: EventBus | None = None
    _stop_watch: Callable[[], Awaitable[None]] | None = None

    async def connect(self) -> None:
        """Connect whatever is not connected yet; never raises."""
        timeout = self.settings.readiness_timeout_seconds * 5
        openers = {
            "database": lambda: open_database(self.settings),
            "bus": lambda: open_bus(self.settings),
            "temporal": lambda: connect_temporal(self.settings),
        }
        for name, opener in openers.items():
            if getattr(self, name) is not None:
                continue
            try:
                setattr(self, name, await asyncio.wait_for(opener(), timeout))
            except Exception as exc:  # retried by keep_connecting; readyz names it
                log.warning("%s not connected: %s", name, type(exc).__name__)

    @property
    def complete(self) -> bool:
        return None not in (self.temporal, self.database, self.bus)

    async def keep_connecting(self, credentials: CredentialCache) -> None:
        while not self.complete or self._stop_watch is None:
            await asyncio.sleep(1)
            await self.connect()
            await self.hear_revocations(credentials)

    async def hear_revocations(self, credentials: CredentialCache) -> None:
        """Once the bus is connected, let revocations reach the credential cache."""
        if self.bus is None or self._stop_watch is not None:
            return
        try:
            self._stop_watch = await watch_revocations(
                self.bus, lambda r: credentials.revoked(r.subject, r.role), credentials.trust
            )
        except Exception as exc:  # retried with the connections; until then, no cache
            log.warning("revocations not heard: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._stop_watch is not None:
            await self._stop_watch()
        if self.bus is not None:
            await self.bus.close()
        if self.database is not None:
            await self.database.close()


def _takes_idempotency_key(request: Request) -> bool:
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return False
    return any(p.alias.lower() == "idempotency-key" for p in dependant.header_params)


def _timeout_detail(request: Request) -> str:
    """What a 504 may promise: a safe retry only where the route takes an Idempotency-Key
    and the request carried one."""
    if _takes_idempotency_key(request) and request.headers.get("idempotency-key"):
        return "no answer in time; a retry with the same Idempotency-Key is safe"
    if request.method in ("GET", "HEAD"):
        return "no answer in time; retry"
    return "no answer in time; the request may still take effect: read before retrying"


class Correlated:
    """ASGI middleware: the request's correlation id (``X-Correlation-ID``, or a new one)
    in the log context and on the answer, a 504 when no answer starts within ``timeout``
    seconds, and a log line for each mutating request (its path, never its query)."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = (Headers(scope=scope).get("x-correlation-id") or str(uuid.uuid4()))[:128]
        trace.get_current_span().set_attribute("agora.correlation_id", cid)
        token = correlation_id.set(cid)
        started = dropped = False
        deadline = asyncio.timeout(self.timeout)  # for the answer's start

        async def correlated(message: Message) -> None:
            nonlocal started, dropped
            if message["type"] == "http.response.start":
                if deadline.expired():  # too late: the 504 goes instead
                    dropped = True
                    return
                started = True
                deadline.reschedule(None)
                MutableHeaders(scope=message)["X-Correlation-ID"] = cid
                if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                    log.info(
                        "%s %s -> %s",
                        scope["method"],
                        scope["path"],
                        message["status"],
                        extra={"correlation_id": cid},
                    )
            elif dropped:
                return
            await send(message)

        try:
            try:
                async with deadline:
                    await self.app(scope, receive, correlated)
            except TimeoutError:
                if started or not deadline.expired():
                    raise
            # the cancel at the deadline may come back as another error's answer (the
            # Temporal client turns it into one): dropped above, the 504 answers
            if not started and deadline.expired():
                request = Request(scope)
                log.warning("no answer in time: %s %s", request.method, request.url.path)
                answer = JSONResponse(
                    {"detail": _timeout_detail(request)},
                    status_code=504,
                    headers={"X-Correlation-ID": cid},
                )
                await answer(scope, receive, send)
        finally:
            correlation_id.reset(token)


async def _serve_mcp(server, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """The MCP door's session manager, in a task of its own: it enters and leaves its
    task group in one task, whichever task runs the app's lifespan."""
    async with server.session_manager.run():
        ready.set()
        await stop.wait()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.env != "test":
            configure_logging(secrets=secrets_of(settings))
        deps = Dependencies(settings)
        await deps.connect()
        await deps.hear_revocations(app.state.credentials)
        app.state.deps = deps
        app.state.writes = StoreWrites(deps)
        retry = asyncio.create_task(deps.keep_connecting(app.state.credentials))
        gauges = asyncio.create_task(
            app.state.metrics.keep_refreshing(deps, settings.metrics_refresh_seconds)
        )
        sweeping = asyncio.create_task(sweep_left_tasks(app))
        ready = asyncio.Event()
        mcp = asyncio.create_task(_serve_mcp(app.state.mcp, ready, app.state.mcp_stop))
        await asyncio.wait_for(ready.wait(), 10)
        try:
            yield
        finally:
            app.state.mcp_stop.set()
            await app.state.a2a_watch.stop()
            if (push_http := getattr(app.state, "a2a_push_http", None)) is not None:
                await push_http.aclose()
            with contextlib.suppress(Exception):
                await mcp
            for task in (retry, gauges, sweeping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.writes.close()
            await deps.close()

    app = FastAPI(
        title="Agora",
        version="0.1.0",
        description="A durable backend for societies of software agents.",
        lifespan=lifespan,
        # FastAPI's own telemetry off: traces come from OpenTelemetry's instrumentation
        # below when tracing is on (FastAPI's would be a second span a request), metrics
        # from api/metrics.py; left on, it asked OpenTelemetry for its providers, and so
        # read the environment, on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.tokens = TokenCodec(settings)
    app.state.card_signer = CardSigner.from_settings(settings)
    app.state.a2a_watch = ReplyWatch()
    app.state.credentials = CredentialCache(
        ttl=settings.credential_cache_seconds, size=settings.credential_cache_size
    )
    app.state.message_buckets = message_buckets(settings)

    # innermost first: an unhandled error is a JSON 500 the audit sees; limits answer
    # before any route runs, and the audit sees their answers too, and the deadline's 504
    app.add_middleware(ServerErrors)
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(Correlated, timeout=settings.request_timeout_seconds)
    audit.install_audit(app)

    install_metrics(app)
    install_error_handlers(app)
    if configure_tracing("agora-api"):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # outermost, so the request's span is open in every middleware and route
        FastAPIInstrumentor.instrument_app(app, excluded_urls="metrics,healthz,readyz")

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = events.document_events(
                document_errors(
                    get_openapi(
                        title=app.title,
                        version=app.version,
                        description=app.description,
                        routes=app.routes,
                    )
                )
            )
        return app.openapi_schema

    app.openapi = openapi
    app.include_router(declare_access(health.router))
    app.include_router(declare_access(a2a.router))
    app.include_router(declare_access(a2a.rpc))
    for router in (
        agents.router,
        agents.operators,
        stream.router,
        chats.router,
        messages.router,
        floor.router,
        accounts.router,
        accounts.chats,
        skills.router,
        tasks.router,
        audit.router,
        events.router,
    ):
        app.include_router(declare_access(router), prefix="/v1")
    mount_console(app)
    app.state.mcp = build_server(in_process(app))
    app.state.mcp_stop = asyncio.Event()
    door = app.state.mcp.streamable_http_app(
        streamable_http_path="/", stateless_http=True, json_response=True
    )
    app.mount("/mcp", RequireBearer(door), name="mcp")
    return app
