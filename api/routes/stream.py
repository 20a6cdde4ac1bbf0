"""The live stream: an agent's inbox queue delivered over a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from api.audit import audit_websocket
from api.deps import authenticate
from bus import InboxBusy, InboxLost, open_inbox
from core.security import InvalidToken
from models.events import EventEnvelope
from persistence import ChatRepository

router = APIRouter(tags=["stream"])
log = logging.getLogger("agora.api.stream")


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return websocket.query_params.get("token")


@router.websocket("/agents/{agent_id}/stream")
async def stream_events(websocket: WebSocket, agent_id: str) -> None:
    """Send the agent its inbox events as JSON, acknowledging each only after it was sent.

    The token comes in the Authorization header or the ``token`` query parameter; only
    the agent itself may open its stream, and one stream at a time. Events that arrived
    while it was away come first, in order. A client drops a redelivered event by its
    ``event_id``.
    """
    deps = websocket.app.state.deps
    settings = websocket.app.state.settings
    # accept first, so a refusal reaches the client as a close code with a reason
    await websocket.accept()
    if deps.database is None or deps.bus is None:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="not ready")
        return
    token = _token(websocket)
    principal = None

    async def refuse(code: int, reason: str) -> None:
        await audit_websocket(deps.database, principal, agent_id, code, reason)
        await websocket.close(code=code, reason=reason)

    try:
        if not token:
            raise InvalidToken("missing token")
        principal = await authenticate(token, settings, deps.database, websocket.app.state.tokens)
    except InvalidToken as exc:
        await refuse(4401, str(exc))
        return
    if principal.agent_id != agent_id:
        await refuse(4403, "an agent reads only its own stream")
        return
    chats = ChatRepository(deps.database)
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
    delivered: dict[str, int] = {}  # chat -> highest seq sent and not yet recorded

    async def record_delivered() -> None:
        """One watermark write per chat per burst, not one per message."""
        while delivered:
            chat_id, seq = delivered.popitem()
            await chats.mark_delivered(agent_id, chat_id, seq)

    try:
        async for message in inbox.messages(closed):
            try:
                event = EventEnvelope.model_validate_json(message.body)
            except ValueError:
                await message.reject(requeue=False)  # to the dead letters
                continue
            await websocket.send_text(message.body.decode())
            await inbox.ack(message)
            if event.type == "message.sent":
                sent = event.payload["message"]
                chat_id = sent["chat_id"]
                delivered[chat_id] = max(delivered.get(chat_id, 0), sent["seq"])
            if inbox.buffer.empty():
                await record_delivered()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left: what was not acked is redelivered next time
    except InboxLost:
        # the broker went away: what was not acked waits in the queue for the next stream
        log.warning("inbox of %s lost its broker connection; closing the stream", agent_id)
        with contextlib.suppress(Exception):
            await websocket.close(code=1012, reason="the event bus restarted: reconnect")
    finally:
        watcher.cancel()
        with contextlib.suppress(Exception):
            await record_delivered()
        await inbox.close()
