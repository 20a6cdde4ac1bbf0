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
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import AdminPrincipal, DatabaseDep, Principal
from api.errors import unprocessable
from api.metrics import route_template
from core.logging import correlation_id
from models.audit import AuditPage, AuditRecord, Outcome, outcome_of
from persistence import AuditRepository, Database

log = logging.getLogger("agora.api.audit")

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
WRITE_TIMEOUT_SECONDS = 2.0


def new_audit_id() -> str:
    """Sorts by time: nanoseconds, then a random tail for requests in the same instant."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _target(path_params: dict[str, str]) -> str | None:
    parts = [f"{name.removesuffix('_id')}:{value}" for name, value in path_params.items()]
    return " ".join(parts) or None


async def write_record(database: Database | None, record: AuditRecord) -> None:
    if database is None:
        log.warning("audit record not written: mongodb is not connected (%s)", record.action)
        return
    try:
        await asyncio.wait_for(AuditRepository(database).add(record), WRITE_TIMEOUT_SECONDS)
    except Exception as exc:  # the request's own answer stands; the miss is logged
        log.warning("audit record not written (%s): %s", record.action, type(exc).__name__)


async def audit_websocket(
    database: Database | None, principal: Principal | None, agent_id: str, code: int, reason: str
) -> None:
    """A stream refused at the door (a close code in 4401..4409)."""
    record = AuditRecord(
        audit_id=new_audit_id(),
        at=datetime.now(UTC),
        actor=principal.name if principal else "anonymous",
        action="WS /v1/agents/{agent_id}/stream",
        target=f"agent:{agent_id}",
        outcome="denied" if code in (4401, 4403) else "rejected",
        status=code,
        reason=reason,
        correlation_id=correlation_id.get(),
    )
    await write_record(database, record)


def install_audit(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def remember_reason(request: Request, exc: StarletteHTTPException) -> Response:
        """Keep the refusal's reason for the audit record, then answer as FastAPI does."""
        if isinstance(exc.detail, str):
            request.state.refusal = exc.detail
        elif isinstance(exc.detail, list):
            request.state.refusal = "; ".join(str(e.get("msg", e)) for e in exc.detail)[:500]
        return await http_exception_handler(request, exc)

    @app.middleware("http")
    async def audit(request: Request, call_next) -> Response:
        response = await call_next(request)
        state = request.scope.get("state", {})
        denied = bool(state.get("denied"))
        code = response.status_code
        outcome: Outcome = outcome_of(code, denied)
        if request.method not in MUTATING and outcome not in ("denied", "limited"):
            return response
        route = request.scope.get("route")
        principal: Principal | None = state.get("principal")
        record = AuditRecord(
            audit_id=new_audit_id(),
            at=datetime.now(UTC),
            actor=principal.name if principal else "anonymous",
            action=f"{request.method} {route_template(request)}",
            target=_target(request.path_params if route else {}),
            outcome=outcome,
            status=code,
            reason=state.get("refusal") or state.get("limited"),
            correlation_id=correlation_id.get(),
        )
        await write_record(request.app.state.deps.database, record)
        return response


router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def read_audit(
    _: AdminPrincipal,
    database: DatabaseDep,
    actor: Annotated[str | None, Query(max_length=120)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9]{20}-[0-9a-f]{8}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """The audit log, newest first (admins): filter by actor, action, target, outcome
    and time; page with ``before``."""
    if since and until and since >= until:
        raise unprocessable("since: must be before until", "query")
    items, next_before = await AuditRepository(database).page(
        actor=actor, action=action, target=target, outcome=outcome,
        since=since, until=until, before=before, limit=limit,
    )  # fmt: skip
    return AuditPage(items=items, next_before=next_before)
