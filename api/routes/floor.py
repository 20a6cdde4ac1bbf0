"""Floor control: request to speak, yield, see the floor, grant by hand, change the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, status

from api.deps import (
    CorrelationId,
    ManagedChat,
    ModeratingChat,
    OpenChat,
    PostingChat,
    ReadableChat,
    TemporalDep,
)
from api.metrics import count
from core.names import chat_workflow_id
from models.floor import FloorAsk, FloorGrant, FloorHandoff, FloorSettingsUpdate, FloorView
from models.workflow_io import FloorCommand, FloorSettingsChange, FloorSignal
from workflows.chat import ChatWorkflow

router = APIRouter(prefix="/chats/{chat_id}/floor", tags=["floor"])


def _handle(temporal, view):
    return temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))


def _command(view, cid, agent_id: str | None = None) -> FloorCommand:
    return FloorCommand(
        actor=view.actor, agent_id=agent_id, platform=view.principal.is_admin, correlation_id=cid
    )


@router.post("", response_model=FloorView)
async def request_floor(
    view: PostingChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
    request: Request,
    body: Annotated[FloorAsk | None, Body()] = None,
) -> FloorView:
    """Ask to speak (RTS): answers with your place in the queue, or with the grant. No body
    asks with priority 0 and no reason."""
    body = body or FloorAsk()
    if view.principal.agent_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only agents ask for the floor")
    if view.chat.speaker_policy is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this chat has no floor control")
    handle = _handle(temporal, view)
    ask = FloorSignal(
        agent_id=view.actor, priority=body.priority, reason=body.reason, correlation_id=cid
    )
    await handle.signal(ChatWorkflow.request_floor, ask)
    count(request, "floor_requested")
    # the update runs after the signal in the workflow: it sees the request (and a grant)
    return await handle.execute_update(ChatWorkflow.floor_status, _command(view, cid))


@router.delete("", response_model=FloorView)
async def release_floor(
    view: ReadableChat, _open: OpenChat, temporal: TemporalDep, cid: CorrelationId
) -> FloorView:
    """Yield the floor, or withdraw your request to speak."""
    return await _handle(temporal, view).execute_update(
        ChatWorkflow.release_floor, _command(view, cid)
    )


@router.get("", response_model=FloorView)
async def read_floor(view: ReadableChat, temporal: TemporalDep) -> FloorView:
    """Who holds the floor, until when, how many messages are left, and who waits."""
    floor = await _handle(temporal, view).query(ChatWorkflow.floor, view.actor)
    if floor is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this chat has no floor control")
    return floor


@router.post("/grant", response_model=FloorView)
async def grant_floor(
    body: FloorGrant,
    view: ModeratingChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> FloorView:
    """A moderator grants the floor to an agent that asked (``moderator`` policy)."""
    return await _handle(temporal, view).execute_update(
        ChatWorkflow.grant_floor, _command(view, cid, body.agent_id)
    )


@router.post(
    "/handoff",
    response_model=FloorView,
    responses={
        409: {
            "description": "the caller does not hold the floor; the named agent is the "
            "caller, not a member that may speak, or has not asked (when the chat hands "
            "only to requesters); or the handoffs in a row between the two have reached "
            "the chat's bound (``max_handoffs_in_row``): the floor is unchanged"
        }
    },
)
async def handoff_floor(
    body: FloorHandoff,
    view: PostingChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> FloorView:
    """The holder ends its turn and hands the floor to ``to``: a member that asked for it
    or, where the chat sets ``handoff_to_any``, any member that may speak."""
    return await _handle(temporal, view).execute_update(
        ChatWorkflow.handoff_floor, _command(view, cid, body.to)
    )


@router.post(
    "/stop",
    response_model=FloorView,
    responses={409: {"description": "no floor control, or the round has ended already"}},
)
async def stop_round(
    view: ManagedChat, _open: OpenChat, temporal: TemporalDep, cid: CorrelationId
) -> FloorView:
    """End the round now, whatever its conditions say (owner and admins): the holder's
    turn ends, and ``chat.round_ended`` says ``stopped``. The next request opens a round."""
    return await _handle(temporal, view).execute_update(
        ChatWorkflow.stop_round, _command(view, cid)
    )


@router.patch("", response_model=FloorView)
async def update_floor(
    body: FloorSettingsUpdate,
    view: ManagedChat,
    _open: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> FloorView:
    """Change the speaker policy or the turn limits (owner and admins)."""
    change = FloorSettingsChange(
        actor=view.actor,
        update=body,
        fields=sorted(body.model_fields_set),
        platform=view.principal.is_admin,
        correlation_id=cid,
    )
    return await _handle(temporal, view).execute_update(ChatWorkflow.set_floor, change)
