"""Messages: post through the chat workflow, page the history, mark as read."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    CorrelationId,
    DatabaseDep,
    OpenChat,
    ReadableChat,
    SettingsDep,
    TemporalDep,
    database_of,
    refuse_from_store,
)
from api.errors import unprocessable
from api.limits import MessageQuota
from api.metrics import count
from core.names import chat_workflow_id
from core.tracing import carrier_now
from models.bounds import MAX_SAFE_INT
from models.chats import (
    Message,
    MessagePage,
    MessagePost,
    MessagePublic,
    Posted,
    ReadMark,
    ReceiptStatus,
)
from models.workflow_io import PostMessage, ReadInput
from persistence import ChatRepository, MessageRepository
from workflows.chat import ChatWorkflow

router = APIRouter(prefix="/chats/{chat_id}", tags=["messages"])
log = logging.getLogger("agora.api.messages")

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=100,
        description="Retrying a post with the same key returns the first answer, once.",
    ),
]


@router.post(
    "/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=Posted,
    responses={
        413: {"description": "content over 16 KiB"},
        409: {
            "description": "the chat is closed, the caller does not hold its floor, or "
            "``yield`` in a chat without floor control"
        },
    },
)
async def create_message(
    body: MessagePost,
    view: MessageQuota,
    temporal: TemporalDep,
    cid: CorrelationId,
    request: Request,
    response: Response,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Posted:
    """Post: the chat workflow checks the right to post and assigns the next ``seq``.

    No store read on the way: the workflow answers 404 for a chat the caller may not
    see, 403 for a role that may not post, 409 for a closed chat or a floor it does not
    hold, so a post is accepted and delivered while the store is away."""
    if len(body.content.encode()) > settings.max_message_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"content: at most {settings.max_message_bytes} bytes",
        )
    post = PostMessage(
        sender=view.actor,
        content=body.content,
        message_type=body.message_type,
        platform=view.principal.is_admin,
        correlation_id=cid,
        trace=carrier_now() or None,
        idempotency_key=idempotency_key,
        fingerprint=PostMessage.digest(body.message_type, body.content),
        yield_floor=body.yield_floor,
    )
    if body.message_type == "system" and not view.principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "system messages come from the platform")
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat_id))
    # the body is in the update id: a reused key with another body reaches the validator
    # (which refuses it) instead of Temporal's answer to the first update with that id
    update_id = (
        f"post/{view.actor}/{idempotency_key}/{post.fingerprint}" if idempotency_key else None
    )
    started = time.perf_counter()
    try:
        posted = await handle.execute_update(ChatWorkflow.post_message, post, id=update_id)
    except WorkflowUpdateFailedError as exc:
        if isinstance(exc.cause, ApplicationError) and exc.cause.type == "NotFound":
            request.state.denied = True  # hidden, and audited as a denial
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # no running workflow: which refusal?
            await refuse_from_store(request, view, database_of(request))
        raise
    # how long the chat workflow took to accept it (the bench splits delivery with it)
    response.headers["Server-Timing"] = f"update;dur={(time.perf_counter() - started) * 1000:.1f}"
    count(request, "message_posted")
    return posted


async def _unstored_tail(temporal, view, after_seq: int) -> list[Message]:
    """What the chat accepted after ``after_seq`` and has not stored yet (the store lags
    delivery); nothing when Temporal cannot answer, and the store's page stands alone."""
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    try:
        return await handle.query(ChatWorkflow.tail, after_seq)
    except (RPCError, WorkflowQueryFailedError) as exc:
        log.warning("no tail for chat %s: %s", view.chat.chat_id, type(exc).__name__)
        return []


@router.get("/messages", response_model=MessagePage)
async def read_messages(
    view: ReadableChat,
    database: DatabaseDep,
    temporal: TemporalDep,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SAFE_INT)] = 0,
    before_seq: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_SAFE_INT,
            description="page back: the messages just before this seq (a large value: the "
            "newest); not with after_seq",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessagePage:
    """A page of the history in ``seq`` order; the caller's own messages carry receipts.
    It holds every message the chat accepted, stored or not yet: the store's page and the
    chat's accepted tail (asked first, so a batch stored in between is in the page).
    With ``before_seq`` it pages back from the end (``next_before_seq``)."""
    if before_seq is not None and after_seq:
        raise unprocessable("before_seq: give after_seq or before_seq, not both", "query")
    start = 0 if before_seq is not None else after_seq
    tail = [] if view.chat.closed else await _unstored_tail(temporal, view, start)
    repository = MessageRepository(database)
    if before_seq is None:
        messages = await repository.page(view.chat.chat_id, after_seq, limit)
    else:
        messages = await repository.page_before(view.chat.chat_id, before_seq, limit)
        tail = [m for m in tail if m.seq < before_seq]
    stored = {m.seq for m in messages}
    messages = sorted([*messages, *(m for m in tail if m.seq not in stored)], key=lambda m: m.seq)
    messages = messages[:limit] if before_seq is None else messages[-limit:]
    marks = await ChatRepository(database).watermarks(view.chat.chat_id)
    me = view.principal.agent_id
    items = []
    for message in messages:
        receipts: dict[str, ReceiptStatus] | None = None
        if me is not None and message.from_ == me:
            receipts = {}
            for agent_id, (delivered, read) in marks.items():
                if agent_id == me:
                    continue
                receipts[agent_id] = (
                    "read"
                    if read >= message.seq
                    else "delivered"
                    if delivered >= message.seq
                    else "sent"
                )
        items.append(
            MessagePublic(
                message_id=message.message_id,
                chat_id=message.chat_id,
                seq=message.seq,
                sender=message.from_,
                to=message.to,
                timestamp=message.timestamp,
                message_type=message.message_type,
                content=message.content,
                is_private=message.is_private,
                langchain_context=message.langchain_context,
                receipts=receipts,
            )
        )
    full = len(items) == limit
    if before_seq is not None:
        back = items[0].seq if full and items[0].seq > 1 else None
        return MessagePage(items=items, next_before_seq=back)
    return MessagePage(items=items, next_after_seq=items[-1].seq if full else None)


@router.post("/read")
async def mark_read(
    body: ReadMark, view: ReadableChat, _open: OpenChat, temporal: TemporalDep
) -> dict[str, int]:
    """Mark every message up to ``up_to_seq`` as read by the caller."""
    if view.principal.agent_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only members have read receipts")
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    read = await handle.execute_update(
        ChatWorkflow.mark_read,
        ReadInput(agent_id=view.principal.agent_id, up_to_seq=body.up_to_seq),
    )
    return {"read_seq": read}
