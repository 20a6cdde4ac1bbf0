"""The audit trail: every mutating request and every refused access, and ``GET /v1/audit``.

The record is written before the response leaves (bounded by a short timeout), so a
client that saw an answer can find its record. A store that is down does not fail the
request: the miss is logged (without any credential) and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import AdminPrincipal, DatabaseDep, Principal
from api.errors import unprocessable
from api.metrics import route_template
from api.writes import StoreWrites
from core.logging import correlation_id
from models.audit import AuditPage, AuditRecord, Outcome, outcome_of
from models.bounds import ClientTime
from persistence import AuditRepository

log = logging.getLogger("agora.api.audit")

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
WRITE_TIMEOUT_SECONDS = 2.0
DENIAL_WINDOW_SECONDS = 60.0


@dataclass
class _Window:
    started: float
    suppressed: int = 0


@dataclass(frozen=True)
class Summary:
    """The denials of one key past the first in one window."""

    key: tuple[str, str, int]
    count: int


class DenialAggregator:
    """Anonymous denials (a bad or missing token, a flood from one address) would grow
    the audit log as fast as anyone can send. Per key (address, action, status), the
    first in each window is recorded as it happens; the rest are counted, and recorded
    as one summary when the window ends. At most two records a key a window, and every
    denial is counted in one of them. Memory is bounded by ``max_keys`` (the least
    recently started window is closed early, its summary kept)."""

    def __init__(self, window_seconds: float = DENIAL_WINDOW_SECONDS, max_keys: int = 10_000):
        self.window = window_seconds
        self.max_keys = max_keys
        self._open: OrderedDict[tuple[str, str, int], _Window] = OrderedDict()
        self._due: list[Summary] = []
        self._swept = float("-inf")

    def observe(self, key: tuple[str, str, int], now: float) -> bool:
        """Count a denial; True when it is to be recorded on its own (the window's first)."""
        window = self._open.get(key)
        if window is not None and now - window.started < self.window:
            window.suppressed += 1
            return False
        if window is not None:
            self._close(key)
        self._open[key] = _Window(started=now)
        while len(self._open) > self.max_keys:
            self._close(next(iter(self._open)))
        return True

    def due(self, now: float) -> list[Summary]:
        """The summaries of windows that have ended (swept at most once a second)."""
        if now - self._swept >= 1.0:
            self._swept = now
            for key in [k for k, w in self._open.items() if now - w.started >= self.window]:
                self._close(key)
        due, self._due = self._due, []
        return due

    def _close(self, key: tuple[str, str, int]) -> None:
        window = self._open.pop(key)
        if window.suppressed:
            self._due.append(Summary(key, window.suppressed))


def new_audit_id() -> str:
    """Sorts by time: nanoseconds, then a random tail for requests in the same instant."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _target(path_params: dict[str, str]) -> str | None:
    parts = [f"{name.removesuffix('_id')}:{value}" for name, value in path_params.items()]
    return " ".join(parts) or None


async def write_record(writes: StoreWrites, record: AuditRecord) -> None:
    """Write the record in the next group commit; wait for it (bounded)."""
    try:
        await asyncio.wait_for(writes.audit.submit(record), WRITE_TIMEOUT_SECONDS)
    except Exception as exc:  # the request's own answer stands; the miss is logged
        log.warning("audit record not written (%s): %s", record.action, type(exc).__name__)


async def audit_websocket(
    writes: StoreWrites,
    principal: Principal | None,
    action: str,
    target: str,
    code: int,
    reason: str | None,
    client: str | None = None,
) -> None:
    """A WebSocket opened (``code`` 1000, recorded as 101) or refused at the door (a close
    code in 4401..4409)."""
    outcome: Outcome = (
        "allowed" if code == 1000 else "denied" if code in (4401, 4403, 4404) else "rejected"
    )
    record = AuditRecord(
        audit_id=new_audit_id(),
        at=datetime.now(UTC),
        actor=principal.name if principal else "anonymous",
        action=action,
        target=target,
        outcome=outcome,
        status=101 if code == 1000 else code,
        reason=reason,
        correlation_id=correlation_id.get(),
        client=client if principal is None else None,
    )
    await write_record(writes, record)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_audit(app: FastAPI) -> None:
    app.state.denials = DenialAggregator(app.state.settings.audit_denial_window_seconds)

    @app.exception_handler(StarletteHTTPException)
    async def remember_reason(request: Request, exc: StarletteHTTPException) -> Response:
        """Keep the refusal's reason for the audit record, then answer as FastAPI does."""
        if isinstance(exc.detail, str):
            request.state.refusal = exc.detail
        elif isinstance(exc.detail, list):
            request.state.refusal = "; ".join(str(e.get("msg", e)) for e in exc.detail)[:500]
        if exc.status_code == 405:
            exc.headers = (exc.headers or {}) | {"Allow": allowed_methods(request)}
        return await http_exception_handler(request, exc)

    app.add_middleware(Audited, owner=app)


class Audited:
    """ASGI middleware: the audit record of a mutating request, or of a refusal, is
    written when the answer starts and before it leaves."""

    def __init__(self, inner: ASGIApp, owner: FastAPI) -> None:
        self.inner = inner
        # this app's state: a mounted app (the MCP door) puts itself in the scope's "app"
        self.state = owner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._record(Request(scope), message["status"])
            await send(message)

        await self.inner(scope, receive, audited)

    async def _record(self, request: Request, code: int) -> None:
        state = request.scope.get("state", {})
        denied = bool(state.get("denied"))
        outcome: Outcome = outcome_of(code, denied)
        if request.method not in MUTATING and outcome not in ("denied", "limited"):
            return
        route = request.scope.get("route")
        principal: Principal | None = state.get("principal")
        action = f"{request.method} {route_template(request)}"
        client = request.client.host if request.client else "unknown"
        writes: StoreWrites = self.state.writes
        if principal is None and outcome in ("denied", "limited"):
            denials: DenialAggregator = self.state.denials
            now = time.monotonic()
            for summary in denials.due(now):
                await write_record(writes, summary_record(summary, denials.window))
            if not denials.observe((client, action, code), now):
                return
        record = AuditRecord(
            audit_id=new_audit_id(),
            at=datetime.now(UTC),
            actor=principal.name if principal else "anonymous",
            action=action,
            target=_target(request.path_params if route else {}),
            outcome=outcome,
            status=code,
            reason=state.get("refusal") or state.get("limited"),
            correlation_id=correlation_id.get(),
            client=client if principal is None else None,
        )
        await write_record(writes, record)


def summary_record(summary: Summary, window: float) -> AuditRecord:
    client, action, code = summary.key
    return AuditRecord(
        audit_id=new_audit_id(),
        at=datetime.now(UTC),
        actor="anonymous",
        action=action,
        outcome=outcome_of(code, False),
        status=code,
        reason=f"{summary.count} more like the one before from {client} within {window:.0f} s",
        client=client,
        count=summary.count,
    )


router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def read_audit(
    _: AdminPrincipal,
    database: DatabaseDep,
    actor: Annotated[str | None, Query(max_length=120)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Outcome | None = None,
    since: ClientTime | None = None,
    until: ClientTime | None = None,
    before: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9]{20}-[0-9a-f]{8}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """The audit log, newest first (admins): filter by actor, action, target, outcome
    and time; page with ``before``."""
    if since and until and since >= until:
        raise unprocessable("since: must be before until", "query")
    items, next_before = await AuditRepository(database).page(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        since=since,
        until=until,
        before=before,
        limit=limit,
    )
    return AuditPage(items=items, next_before=next_before)
