"""Watching the bus: observer streams (a room or the whole bus, without being a member),
and the dead letters (admins).

An observer takes nothing from anyone: its queue is its own, exclusive, and goes away
with the connection. Who may watch what is decided when the ticket is made, and every
stream opened is audited with its scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from pydantic.json_schema import models_json_schema

from api.audit import audit_websocket
from api.deps import (
    AdminPrincipal,
    BusDep,
    CurrentPrincipal,
    DatabaseDep,
    Principal,
    SettingsDep,
    authenticate,
    require_admin_or_operator,
    token_is_live,
    visible_chat,
)
from bus import dead_letters, replay_dead_letters, tail_events
from bus.tail import TooSlow
from core.security import InvalidToken
from core.tracing import SLOWEST, is_configured
from models.events import (
    DeadLetterPage,
    DeadLetterView,
    EventEnvelope,
    ObserverScope,
    ObserverTicket,
    WhoAmI,
    catalogue,
    event_chat_id,
)
from persistence import ChatRepository, StreamTicketRepository

router = APIRouter(tags=["events"])
log = logging.getLogger("agora.api.events")

OBSERVE_PATH = "/v1/observe"


@router.get("/me", response_model=WhoAmI)
async def read_me(principal: CurrentPrincipal) -> WhoAmI:
    """Who the bearer token stands for (the console's sign-in asks this first)."""
    return WhoAmI(
        role=principal.role,
        agent_id=principal.agent_id,
        operator_id=principal.operator_id,
        name=principal.name,
    )


def _subject(principal: Principal) -> str:
    return principal.agent_id or principal.operator_id or "admin"


async def _check_scope(request, principal: Principal, scope: ObserverScope, database) -> None:
    """A chat observer needs a chat the caller may see (404 otherwise, as for a read).
    Operators watch any room, as admins do: that is what observing is for, and each
    stream is audited."""
    if scope.chat_id is None:
        return
    if principal.role == "operator":
        if await ChatRepository(database).get(scope.chat_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "chat not found")
        return
    await visible_chat(request, scope.chat_id, principal, database)


@router.post(
    "/observe/ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=ObserverTicket,
    responses={404: {"description": "the chat does not exist or the caller may not see it"}},
)
async def create_observer_ticket(
    scope: ObserverScope,
    request: Request,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    database: DatabaseDep,
) -> ObserverTicket:
    """A ticket that opens one observer stream within seconds: one chat's events
    (``chat_id``) or the whole bus, optionally only some ``types`` (``chat.*``). Admins
    and operators see every event of the scope; an agent sees what its own inbox would
    (the events addressed to it), without taking them from its inbox."""
    await _check_scope(request, principal, scope, database)
    ticket = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=settings.stream_ticket_seconds)
    await StreamTicketRepository(database).put(
        ticket,
        _subject(principal),
        principal.token_id or "",
        expires,
        extra={"role": principal.role, "scope": scope.model_dump(mode="json")},
    )
    ws_base = settings.api_url.replace("http", "ws", 1)
    return ObserverTicket(
        ticket=ticket,
        expires_at=expires,
        stream_url=f"{ws_base}{OBSERVE_PATH}?ticket={ticket}",
        scope=scope,
    )


class ObserverSink:
    """Sends an observer the events its scope shows, until the client is gone.

    The tail calls ``send`` from the broker's consumer, where a raised error is only
    logged: a send to a closed socket therefore ends the stream (``stop``) instead, so
    its queue goes with it. Left raising, such a stream stayed bound to the bus after its
    browser had gone and failed (with a logged traceback) on every event that followed.
    """

    def __init__(
        self, websocket: WebSocket, principal: Principal, scope: ObserverScope, stop: asyncio.Event
    ) -> None:
        self.websocket = websocket
        self.principal = principal
        self.scope = scope
        self.stop = stop

    async def send(self, event: EventEnvelope) -> None:
        if self.stop.is_set() or not shows(self.principal, self.scope, event):
            return
        try:
            await self.websocket.send_text(event.model_dump_json())
        except (WebSocketDisconnect, RuntimeError, OSError):  # the client is gone
            self.stop.set()


def shows(principal: Principal, scope: ObserverScope, event: EventEnvelope) -> bool:
    """Whether an observer with this scope is shown the event."""
    if scope.chat_id is not None and event_chat_id(event) != scope.chat_id:
        return False
    return principal.role != "agent" or principal.agent_id in event.recipients


async def _ticket(websocket: WebSocket, ticket: str) -> tuple[Principal, ObserverScope]:
    deps = websocket.app.state.deps
    record = await StreamTicketRepository(deps.database).redeem(ticket)
    if record is None or "scope" not in record:
        raise InvalidToken("observer ticket unknown, used or expired")
    role, subject = record["role"], record["agent_id"]
    if role != "admin" and not await token_is_live(
        websocket.app.state.credentials, deps.database, record["token_id"], subject, role
    ):
        raise InvalidToken("token revoked")
    principal = Principal(
        role,
        agent_id=subject if role == "agent" else None,
        operator_id=subject if role == "operator" else None,
        token_id=record["token_id"] or None,
    )
    return principal, ObserverScope.model_validate(record["scope"])


async def _audit(websocket: WebSocket, principal: Principal | None, scope, code, reason) -> None:
    target = f"chat:{scope.chat_id}" if scope and scope.chat_id else "bus"
    client = websocket.client.host if websocket.client else None
    writes = websocket.app.state.writes
    await audit_websocket(writes, principal, f"WS {OBSERVE_PATH}", target, code, reason, client)


@router.websocket("/observe")
async def observe_events(websocket: WebSocket) -> None:
    """Every event of the scope as JSON, from the moment the stream opens (no backlog).
    The first frame is ``observer.ready``: the queue is bound, nothing later is missed.

    Opened with a ticket (``POST /v1/observe/ticket``) in ``ticket``, or with the token
    in the Authorization header and the scope in the query (``chat_id``, ``types``,
    comma-separated). Refusals close with 4401 (no valid ticket or token), 4404 (a chat
    the caller may not see) or 1013 (not ready). A client that reads slower than the
    events come, until ``AGORA_OBSERVER_MAX_BACKLOG`` of them wait for it at the broker,
    is closed with 4008 (too slow): it reconnects, and knows it missed what came between."""
    deps = websocket.app.state.deps
    settings = websocket.app.state.settings
    await websocket.accept()
    if deps.database is None or deps.bus is None:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="not ready")
        return
    principal: Principal | None = None
    scope: ObserverScope | None = None
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    try:
        if websocket.query_params.get("token") is not None:
            raise InvalidToken("no token in a URL: use the Authorization header or a ticket")
        if ticket := websocket.query_params.get("ticket"):
            principal, scope = await _ticket(websocket, ticket)
        elif scheme.lower() == "bearer" and token.strip():
            state = websocket.app.state
            principal = await authenticate(
                token.strip(), settings, deps.database, state.tokens, state.credentials
            )
            types = [t for t in websocket.query_params.get("types", "").split(",") if t]
            scope = ObserverScope(chat_id=websocket.query_params.get("chat_id"), types=types)
        else:
            raise InvalidToken("missing token: an Authorization header or an observer ticket")
    except (InvalidToken, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        await _audit(websocket, principal, scope, 4401, reason)
        await websocket.close(code=4401, reason=reason.encode()[:123].decode(errors="ignore"))
        return
    if scope.chat_id is not None:
        try:
            await _check_scope(websocket, principal, scope, deps.database)
        except HTTPException:  # hidden or missing: the same answer
            await _audit(websocket, principal, scope, 4404, "chat not found")
            await websocket.close(code=4404, reason="chat not found")
            return
    await _audit(websocket, principal, scope, 1000, None)
    stop = asyncio.Event()
    sink = ObserverSink(websocket, principal, scope, stop)

    async def watch_client() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await websocket.receive_text()  # pings; nothing else
        stop.set()

    async def ready() -> None:
        """The first frame: from here on, nothing of the scope is missed."""
        hello = EventEnvelope(
            event_id=str(uuid.uuid4()),
            type="observer.ready",
            occurred_at=datetime.now(UTC),
            payload={"scope": scope.model_dump(mode="json")},
        )
        await websocket.send_text(hello.model_dump_json())

    watcher = asyncio.create_task(watch_client())
    try:
        await tail_events(
            deps.bus,
            sink.send,
            scope.types or None,
            stop,
            on_ready=ready,
            max_backlog=deps.settings.observer_max_backlog,
        )
    except (WebSocketDisconnect, RuntimeError):
        pass
    except TooSlow as slow:  # it reads slower than the bus writes: it reconnects
        log.warning("observer stream too slow, closed: %s", slow)
        with contextlib.suppress(Exception):
            await websocket.close(code=4008, reason="too slow: events were waiting; reconnect")
    except Exception as exc:  # the broker went away: the client reconnects
        log.warning("observer stream lost the bus: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            await websocket.close(code=1012, reason="the event bus restarted: reconnect")
    finally:
        watcher.cancel()


@router.get("/events/dead-letters", response_model=DeadLetterPage)
async def read_dead_letters(
    _admin: AdminPrincipal,
    bus: BusDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    """The events no consumer could handle, oldest first, left where they are (admins)."""
    letters = await dead_letters(bus, limit)
    return DeadLetterPage(items=[DeadLetterView(**vars(letter)) for letter in letters])


@router.post("/events/dead-letters/replay", response_model=DeadLetterPage)
async def replay_dead(
    _admin: AdminPrincipal,
    bus: BusDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    """Send up to ``limit`` dead letters back where they came from, and drop them from
    the dead-letter queue; consumers drop a second copy by its ``event_id`` (admins)."""
    letters = await replay_dead_letters(bus, limit)
    return DeadLetterPage(items=[DeadLetterView(**vars(letter)) for letter in letters])


@router.get("/traces/slowest")
async def read_slowest_traces(
    _staff: Annotated[Principal, Depends(require_admin_or_operator)],
) -> dict:
    """This API process's slowest recent traces (their root span's duration), when it
    traces (``AGORA_TRACING=1`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``); admins and operators."""
    return {"tracing": is_configured(), "traces": SLOWEST.slowest()}


def document_events(schema: dict) -> dict:
    """Every event payload's JSON schema into the OpenAPI's components, each marked with
    its ``x-event-type``: the streams are WebSockets, which the OpenAPI cannot describe,
    and a client generating its types from the document still gets what each event's
    ``payload`` holds. A model the routes already publish keeps the routes' schema."""
    models = [(cls, "serialization") for cls in catalogue().values()]
    _, found = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in found.get("$defs", {}).items():
        schemas.setdefault(name, model)
    return schema
