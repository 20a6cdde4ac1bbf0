"""The live stream: an agent's inbox queue delivered over a WebSocket.

A stream is opened with the agent's token in the ``Authorization`` header, or, where the
client cannot set a header on a WebSocket (a browser), with a single-use ticket in the
query (``?ticket=``) that the agent asked for moments before. A long-lived token never
travels in a URL, where access logs and proxies would keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect, status

from api.audit import audit_websocket, summary_record, write_record
from api.credentials import CredentialCache
from api.deps import (
    BusDep,
    CurrentPrincipal,
    DatabaseDep,
    Principal,
    SelfAgent,
    SettingsDep,
    authenticate,
    token_is_live,
)
from api.writes import StoreWrites
from bus import InboxBusy, InboxLost, open_inbox
from core.security import InvalidToken
from core.tracing import delivery_span
from models.agents import StreamTicket
from models.events import EventBatch, EventEnvelope
from persistence import ChatRepository, Database, StreamTicketRepository

router = APIRouter(tags=["stream"])
log = logging.getLogger("agora.api.stream")


def _token(websocket: WebSocket) -> str | None:
    scheme, _, credential = websocket.headers.get("authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


@router.post(
    "/agents/{agent_id}/stream-ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=StreamTicket,
)
async def create_stream_ticket(
    agent: SelfAgent, principal: CurrentPrincipal, settings: SettingsDep, database: DatabaseDep
) -> StreamTicket:
    """A ticket that opens this agent's stream once, within a few seconds (the agent itself):
    ``GET /v1/agents/{agent_id}/stream?ticket=...`` for clients that cannot send a header."""
    ticket = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=settings.stream_ticket_seconds)
    await StreamTicketRepository(database).put(
        ticket, agent.agent_id, principal.token_id or "", expires
    )
    ws_base = settings.api_url.replace("http", "ws", 1)
    return StreamTicket(
        ticket=ticket,
        expires_at=expires,
        stream_url=f"{ws_base}/v1/agents/{agent.agent_id}/stream?ticket={ticket}",
    )


async def _ticket_principal(
    database: Database, credentials: CredentialCache, ticket: str, agent_id: str
) -> Principal:
    """The agent a ticket was issued to, if it is unused, unexpired, for this stream, and
    the token it was asked with is still live."""
    record = await StreamTicketRepository(database).redeem(ticket)
    if record is None or "scope" in record:  # an observer's ticket opens no inbox
        raise InvalidToken("stream ticket unknown, used or expired")
    if record["agent_id"] != agent_id:
        raise InvalidToken("stream ticket issued for another stream")
    if not await token_is_live(credentials, database, record["token_id"], agent_id, "agent"):
        raise InvalidToken("token revoked")
    return Principal("agent", agent_id=agent_id, token_id=record["token_id"])


@router.get(
    "/agents/{agent_id}/events",
    response_model=EventBatch,
    responses={
        409: {"description": "another stream (or poll) of this agent reads its inbox"},
        503: {"description": "the event bus is unavailable: retry"},
    },
)
async def poll_events(
    agent: SelfAgent,
    bus: BusDep,
    database: DatabaseDep,
    wait: Annotated[float, Query(ge=0, le=25, description="seconds to wait for one")] = 10,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> EventBatch:
    """A bounded long poll of the agent's inbox (the agent itself), for clients that
    cannot hold a WebSocket (an MCP client, say): waits up to ``wait`` seconds for an
    event, then answers with what arrived, up to ``limit``, in order. Events are taken
    from the inbox when the answer is made: a client that loses an answer loses those
    events, where the stream would send them again. One reader at a time, as for the
    stream."""
    try:
        inbox = await open_inbox(bus, agent.agent_id, prefetch=limit)
    except InboxBusy:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "another stream of this agent is open"
        ) from None
    except InboxLost:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the event bus is unavailable: retry"
        ) from None
    events: list[EventEnvelope] = []
    delivered: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        while len(events) < limit:
            # the first event may take until the deadline; the rest are what is there
            timeout = deadline - loop.time() if not events else 0.05
            if timeout <= 0:
                break
            try:
                message = await asyncio.wait_for(inbox.buffer.get(), timeout)
            except TimeoutError:
                break
            try:
                event = EventEnvelope.model_validate_json(message.body)
            except ValueError:
                await inbox.reject(message)
                continue
            await inbox.ack(message)
            events.append(event)
            if event.type == "message.sent":
                sent = event.payload["message"]
                delivered[sent["chat_id"]] = max(delivered.get(sent["chat_id"], 0), sent["seq"])
    except InboxLost:
        pass  # what was taken is answered; the rest waits in the queue
    finally:
        await inbox.close()
    chats = ChatRepository(database)
    for chat_id, seq in delivered.items():
        await chats.mark_delivered(agent.agent_id, chat_id, seq)
    return EventBatch(events=events)


@router.websocket("/agents/{agent_id}/stream")
async def stream_events(websocket: WebSocket, agent_id: str) -> None:
    """Send the agent its inbox events as JSON, acknowledging each only after it was sent.

    The token comes in the Authorization header, or a single-use ticket in ``ticket``
    (``POST .../stream-ticket``); only the agent itself may open its stream, and one
    stream at a time. Events that arrived
    while it was away come first, in order. A client drops a redelivered event by its
    ``event_id``.
    """
    deps = websocket.app.state.deps
    settings = websocket.app.state.settings
    credentials = websocket.app.state.credentials
    # accept first, so a refusal reaches the client as a close code with a reason
    await websocket.accept()
    if deps.database is None or deps.bus is None:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="not ready")
        return
    token = _token(websocket)
    principal = None

    async def refuse(code: int, reason: str) -> None:
        client = websocket.client.host if websocket.client else "unknown"
        denials = websocket.app.state.denials
        now = time.monotonic()
        for summary in denials.due(now):
            await write_record(websocket.app.state.writes, summary_record(summary, denials.window))
        first = principal is not None or denials.observe((client, "WS stream", code), now)
        if first:
            await audit_websocket(
                websocket.app.state.writes,
                principal,
                "WS /v1/agents/{agent_id}/stream",
                f"agent:{agent_id}",
                code,
                reason,
                client,
            )
        # a close frame's reason holds at most 123 bytes
        await websocket.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    ticket = websocket.query_params.get("ticket")
    try:
        if websocket.query_params.get("token") is not None:
            raise InvalidToken("no token in a URL: use the Authorization header or a ticket")
        if token:
            principal = await authenticate(
                token, settings, deps.database, websocket.app.state.tokens, credentials
            )
        elif ticket:
            principal = await _ticket_principal(deps.database, credentials, ticket, agent_id)
        else:
            raise InvalidToken("missing token: an Authorization header or a stream ticket")
    except InvalidToken as exc:
        await refuse(4401, str(exc))
        return
    if principal.agent_id != agent_id:
        await refuse(4403, "an agent reads only its own stream")
        return
    try:
        inbox = await open_inbox(deps.bus, agent_id)
    except InboxBusy:
        await refuse(4409, "another stream of this agent is open")
        return
    except InboxLost:
        await websocket.close(code=1013, reason="the event bus is unavailable: retry")
        return
    closed = asyncio.Event()

    async def watch_client() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await websocket.receive_text()  # clients may send pings; nothing else
        closed.set()

    watcher = asyncio.create_task(watch_client())
    writes: StoreWrites = websocket.app.state.writes
    try:
        async for message in inbox.messages(closed, settings.stream_check_seconds):
            try:
                event = EventEnvelope.model_validate_json(message.body)
            except ValueError:
                await inbox.reject(message)
                continue
            with delivery_span(message.headers, agent_id, event):
                await websocket.send_text(message.body.decode())
            await inbox.ack(message)
            if event.type == "message.sent":  # the receipt: written by the process, later
                sent = event.payload["message"]
                writes.mark_delivered(agent_id, sent["chat_id"], sent["seq"])
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left: what was not acked is redelivered next time
    except InboxLost as lost:
        # the broker went away: what was not acked waits in the queue for the next stream
        log.warning("inbox of %s %s; closing the stream", agent_id, lost)
        with contextlib.suppress(Exception):
            await websocket.close(code=1012, reason="the event bus restarted: reconnect")
    finally:
        watcher.cancel()
        await inbox.close()
