"""Chats and their members: open, list, show, close, invite, remove, change roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.deps import (
    AgentPrincipal,
    ClosableChat,
    CorrelationId,
    CurrentPrincipal,
    DatabaseDep,
    OpenChat,
    PathAgentId,
    SettingsDep,
    TemporalDep,
    VisibleChat,
)
from api.errors import unprocessable
from core.names import chat_workflow_id
from core.temporal import CHAT_ID, KIND, STATUS
from models.agents import AgentStatus
from models.chats import (
    ChatCreate,
    ChatPage,
    ChatPublic,
    Member,
    MemberAdd,
    MemberUpdate,
    Role,
    direct_chat_id,
    spread_interval,
)
from models.floor import FloorState
from models.workflow_io import ChatStart, ChatState, CloseChat, MembershipChange
from persistence import AgentRepository, ChatRepository, Database, decode_chat_cursor
from workflows.chat import ChatWorkflow

router = APIRouter(prefix="/chats", tags=["chats"])


async def _live_agents(database: Database, agent_ids: list[str]) -> set[str]:
    """404 for an unknown agent, 422 for a retired one: a chat is for living agents.
    Answers the hosted ones among them (their inboxes get no copies of the room)."""
    agents = AgentRepository(database)
    hosted = set()
    for agent_id in agent_ids:
        manifest = await agents.get(agent_id)
        if manifest is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
        if manifest.status == AgentStatus.RETIRED:
            raise unprocessable(f"agent_id: agent {agent_id} is retired")
        if manifest.hosted:
            hosted.add(agent_id)
    return hosted


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatPublic,
    responses={200: {"model": ChatPublic, "description": "the pair's existing direct chat"}},
)
async def create_chat(
    body: ChatCreate,
    principal: AgentPrincipal,
    settings: SettingsDep,
    temporal: TemporalDep,
    database: DatabaseDep,
    response: Response,
    cid: CorrelationId,
) -> ChatPublic:
    """Open a direct chat with one agent (the pair's one chat), or a group you own."""
    me = principal.agent_id
    if me in body.participants:
        raise unprocessable("participants: do not list yourself")
    floor_settings = body.floor_settings()
    if body.type == "direct" and floor_settings is not None:
        raise unprocessable("speaker_policy: a direct chat has no floor")
    hosted = await _live_agents(database, [me, *body.participants])
    if body.type == "direct":
        generation = 0
        while True:  # past the pair's closed chats, to its open one or the next
            chat_id = direct_chat_id(me, body.participants[0], generation)
            existing = await ChatRepository(database).get(chat_id)
            if existing is None:
                break
            if not existing.closed:
                response.status_code = status.HTTP_200_OK
                return existing
            generation += 1
    else:
        chat_id = f"g-{uuid.uuid4().hex[:20]}"
    now = datetime.now(UTC)
    creator_role = Role.OWNER if body.type == "group" else Role.MEMBER
    members = {me: Member(agent_id=me, role=creator_role, joined_at=now, hosted=me in hosted)}
    members |= {
        a: Member(agent_id=a, role=Role.MEMBER, joined_at=now, hosted=a in hosted)
        for a in body.participants
    }
    chat = ChatPublic(
        chat_id=chat_id,
        type=body.type,
        topic=body.topic,
        join_rule=body.join_rule if body.type == "group" else "invite",
        speaker_policy=floor_settings.speaker_policy if floor_settings else None,
        created_by=me,
        created_at=now,
        members=list(members.values()),
    )
    state = ChatState(
        chat=chat,
        members=members,
        continue_as_new_after_events=settings.continue_as_new_after_events,
        continue_as_new_after_updates=settings.continue_as_new_after_updates,
        floor=FloorState(settings=floor_settings) if floor_settings else None,
        llm_task_queue=settings.llm_task_queue,
        notice_interval_seconds=settings.notice_interval_seconds,
        group_notice_interval_seconds=spread_interval(
            settings.group_notice_interval_seconds, chat_id, settings.group_notice_spread
        ),
        projection_interval_seconds=settings.projection_interval_seconds,
    )
    start = WithStartWorkflowOperation(
        ChatWorkflow.run,
        ChatStart(state=state, correlation_id=cid),
        id=chat_workflow_id(chat_id),
        task_queue=settings.task_queue,
        # a direct chat's pair may ask twice at once: both get the one chat
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(CHAT_ID, chat_id),
                SearchAttributePair(STATUS, "open"),
                SearchAttributePair(KIND, f"chat.{body.type}"),
            ]
        ),
        static_summary=f"{body.type.capitalize()} chat {chat_id}"
        + (f": {body.topic}" if body.topic else ""),
        memo={
            "summary": f"{body.type.capitalize()} chat opened by {me} with "
            f"{', '.join(body.participants)}"
        },
    )
    return await temporal.execute_update_with_start_workflow(
        ChatWorkflow.open, start_workflow_operation=start
    )


@router.get("", response_model=ChatPage)
async def read_chats(
    principal: CurrentPrincipal,
    database: DatabaseDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ChatPage:
    """The caller's chats, newest first, a page at a time (``next_cursor``); an admin
    pages through every chat of the platform; an operator sees none (it is in no chat)."""
    if principal.agent_id is None and not principal.is_admin:
        return ChatPage(items=[])
    try:
        after = decode_chat_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise unprocessable(f"cursor: {exc}", "query") from exc
    member = None if principal.is_admin else principal.agent_id
    items, next_cursor = await ChatRepository(database).page(member, after, limit)
    return ChatPage(items=items, next_cursor=next_cursor)


@router.get("/{chat_id}", response_model=ChatPublic)
async def read_chat(view: VisibleChat) -> ChatPublic:
    """A chat its members (and, for a public chat, anyone) can see."""
    return view.chat


@router.delete("/{chat_id}", response_model=ChatPublic)
async def close_chat(view: ClosableChat, temporal: TemporalDep, cid: CorrelationId) -> ChatPublic:
    """Close the chat (the owner; either member of a direct chat): no more messages; the
    history stays readable. A closed direct chat's pair opens a new one when it asks."""
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    request = CloseChat(actor=view.actor, platform=view.principal.is_admin, correlation_id=cid)
    return await handle.execute_update(ChatWorkflow.close, request)


@router.post("/{chat_id}/members", status_code=status.HTTP_201_CREATED, response_model=ChatPublic)
async def create_member(
    body: MemberAdd,
    view: OpenChat,
    temporal: TemporalDep,
    database: DatabaseDep,
    cid: CorrelationId,
) -> ChatPublic:
    """Invite an agent (admins, owner), or join a public chat yourself."""
    hosted = await _live_agents(database, [body.agent_id])
    change = MembershipChange(
        actor=view.actor,
        target=body.agent_id,
        role=Role(body.role),
        hosted=body.agent_id in hosted,
        platform=view.principal.is_admin,
        correlation_id=cid,
    )
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    return await handle.execute_update(ChatWorkflow.add_member, change)


@router.delete("/{chat_id}/members/{agent_id}", response_model=ChatPublic)
async def delete_member(
    agent_id: PathAgentId, view: OpenChat, temporal: TemporalDep, cid: CorrelationId
) -> ChatPublic:
    """Remove a member below your role, or leave."""
    change = MembershipChange(
        actor=view.actor, target=agent_id, platform=view.principal.is_admin, correlation_id=cid
    )
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    return await handle.execute_update(ChatWorkflow.remove_member, change)


@router.patch("/{chat_id}/members/{agent_id}", response_model=ChatPublic)
async def update_member(
    agent_id: PathAgentId,
    body: MemberUpdate,
    view: OpenChat,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> ChatPublic:
    """Change a member's role, below your own."""
    change = MembershipChange(
        actor=view.actor,
        target=agent_id,
        role=Role(body.role),
        platform=view.principal.is_admin,
        correlation_id=cid,
    )
    handle = temporal.get_workflow_handle_for(ChatWorkflow.run, chat_workflow_id(view.chat.chat_id))
    return await handle.execute_update(ChatWorkflow.set_role, change)
