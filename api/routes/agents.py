"""Agents: introduce, read, discover, change, heartbeat, retire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.a2a.remote import CardRefused, read_card
from api.deps import (
    AdminPrincipal,
    CorrelationId,
    CurrentPrincipal,
    DatabaseDep,
    ExistingAgent,
    IntroducerPrincipal,
    LiveOwnAgent,
    OwnAgent,
    Principal,
    Public,
    SettingsDep,
    TemporalDep,
    TokensDep,
    public_pages,
)
from api.errors import unprocessable
from api.metrics import count
from core.names import agent_workflow_id
from core.temporal import AGENT_ID, KIND, STATUS
from llm import UnknownModel, chat_model, runs_in_process
from models.agents import (
    AgentBatch,
    AgentBatchCreated,
    AgentCard,
    AgentCreate,
    AgentCreated,
    AgentManifest,
    AgentPage,
    AgentSkill,
    AgentStatus,
    AgentUpdate,
    Brain,
    ManifestChangeRecord,
    ManifestHistory,
    OperatorCreate,
    OperatorCreated,
    PublicProfile,
    TokenIssued,
)
from models.attention import AttentionUpdate, AttentionView
from models.market import Review
from models.workflow_io import (
    AgentStart,
    AgentState,
    AttentionChange,
    Heartbeat,
    ManifestChange,
    RetireRequest,
    TokenRotation,
)
from persistence import (
    AgentRepository,
    CredentialRepository,
    Database,
    OperatorRepository,
    ReviewRepository,
    TaskRepository,
    decode_cursor,
)
from workflows.agent import AgentWorkflow

router = APIRouter(prefix="/agents", tags=["agents"])


def _new_agent_id() -> str:
    import uuid

    return f"a-{uuid.uuid4().hex[:16]}"


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgentCreated)
async def create_agent(
    body: AgentCreate,
    introducer: IntroducerPrincipal,
    settings: SettingsDep,
    temporal: TemporalDep,
    database: DatabaseDep,
    cid: CorrelationId,
    request: Request,
    tokens: TokensDep,
) -> AgentCreated:
    """Introduce an agent: starts its workflow, which stores the manifest and announces it."""
    agent_id = body.agent_id or _new_agent_id()
    if await AgentRepository(database).exists(agent_id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {agent_id} already exists")
    body = await _remote_mind(body, settings, ["body"])
    _check_brain(body, settings, ["body"])
    created = await _introduce(body, agent_id, introducer, settings, temporal, cid, tokens)
    count(request, "agent_introduced")
    return created


@router.post(
    ":batch",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentBatchCreated,
    responses={
        409: {"description": "an entry's agent_id is taken (named by its index): none made"},
        422: {"description": "an entry is invalid, over 100, or repeats an id: none made"},
    },
)
async def create_agents(
    body: AgentBatch,
    introducer: IntroducerPrincipal,
    settings: SettingsDep,
    temporal: TemporalDep,
    database: DatabaseDep,
    cid: CorrelationId,
    request: Request,
    tokens: TokensDep,
) -> AgentBatchCreated:
    """Introduce up to 100 agents in one request, each with its own token: every entry
    is checked first (a bad one is 422 naming its index, a taken id 409), and only then
    are the lives started, side by side."""
    for index, entry in enumerate(body.agents):
        body.agents[index] = await _remote_mind(entry, settings, ["body", "agents", index])
        _check_brain(body.agents[index], settings, ["body", "agents", index])
    ids = [entry.agent_id or _new_agent_id() for entry in body.agents]
    taken = await AgentRepository(database).existing(ids)
    if taken:
        index = next(i for i, agent_id in enumerate(ids) if agent_id in taken)
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"agents.{index}: agent {ids[index]} already exists"
        )
    created = await asyncio.gather(
        *(
            _introduce(entry, agent_id, introducer, settings, temporal, cid, tokens)
            for entry, agent_id in zip(body.agents, ids, strict=True)
        )
    )
    count(request, "agent_introduced", len(created))
    return AgentBatchCreated(agents=list(created))


async def _remote_mind(body: AgentCreate, settings, where: list) -> AgentCreate:
    """A remote agent's card read (422 at ``remote.a2a_card_url`` with the reason if it
    cannot be used): its mind is then its A2A endpoint, asked as a model is."""
    if body.remote is None:
        return body
    try:
        card, rpc = await read_card(body.remote.a2a_card_url, settings)
    except CardRefused as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": [*where, "remote", "a2a_card_url"], "msg": str(exc), "type": "card_refused"}],
        ) from None
    brain = Brain(model=f"a2a:{rpc}", turns_per_hour=body.remote.turns_per_hour)
    bio = body.bio or card.description[:2000] or None
    return body.model_copy(update={"brain": brain, "bio": bio})


def _check_brain(body: AgentCreate, settings, where: list) -> None:
    """A brain names a model this deployment can run (422 at its ``model`` otherwise)."""
    if body.brain is not None:
        try:
            chat_model(body.brain.model, base_url=settings.llm_base_url)
        except UnknownModel as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [{"loc": [*where, "brain", "model"], "msg": str(exc), "type": "unknown_model"}],
            ) from exc


async def _introduce(
    body: AgentCreate, agent_id: str, introducer, settings, temporal, cid, tokens
) -> AgentCreated:
    """Start the agent's life and wait until its first manifest is stored."""
    now = datetime.now(UTC)
    issued = tokens.issue(agent_id, "agent", now=now)
    manifest = AgentManifest(
        agent_id=agent_id,
        status=AgentStatus(body.status),
        available_resources=body.available_resources,
        public_profile=PublicProfile(name=body.name, bio=body.bio),
        last_updated=now,
        created_at=now,
        hosted=body.brain is not None,
        operator_id=introducer.operator_id,
    )
    state = AgentState(
        brain=body.brain,
        llm_task_queue=settings.llm_task_queue,
        local_mind=body.brain is not None and runs_in_process(body.brain.model, settings.llm_model),
        manifest=manifest,
        token_id=issued.token_id,
        token_expires_at=issued.expires_at,
        offline_after_seconds=settings.agent_offline_after_seconds,
        projection_interval_seconds=settings.projection_interval_seconds,
        attention_projection_interval_seconds=settings.attention_projection_interval_seconds,
        continue_as_new_after_events=settings.continue_as_new_after_events,
        continue_as_new_after_updates=settings.continue_as_new_after_updates,
    )
    start = WithStartWorkflowOperation(
        AgentWorkflow.run,
        AgentStart(state=state, correlation_id=cid),
        id=agent_workflow_id(agent_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(AGENT_ID, agent_id),
                SearchAttributePair(STATUS, manifest.status.value),
                SearchAttributePair(KIND, "agent"),
            ]
        ),
        static_summary=f"Agent {body.name} ({agent_id})",
        memo={
            "summary": f"Agent {body.name} ({agent_id}), introduced by "
            f"{introducer.operator_id or 'an admin'}"
        },
    )
    stored = await temporal.execute_update_with_start_workflow(
        AgentWorkflow.introduce, start_workflow_operation=start
    )
    return AgentCreated(
        agent_id=agent_id, token=issued.token, token_expires_at=issued.expires_at, manifest=stored
    )


def _sees_everything(principal: Principal, manifest: AgentManifest) -> bool:
    """The agent itself, its operator and admins see all its rooms."""
    return (
        principal.is_admin
        or principal.agent_id == manifest.agent_id
        or (principal.operator_id is not None and principal.operator_id == manifest.operator_id)
    )


async def _as_seen(
    principal: Principal, manifests: list[AgentManifest], database: Database
) -> list[AgentManifest]:
    """Manifests as the caller may see them (``public_view`` for other agents' pages)."""
    hidden = [m for m in manifests if not _sees_everything(principal, m)]
    shown = {m.agent_id: m for m in await public_pages(hidden, database)}
    return [shown.get(m.agent_id, m) for m in manifests]


@router.get("", response_model=AgentPage)
async def read_agents(
    principal: CurrentPrincipal,
    database: DatabaseDep,
    status_: Annotated[AgentStatus | None, Query(alias="status")] = None,
    resource: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="name contains")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AgentPage:
    """Discover agents by status, resource (skill, tool or service) and name."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise unprocessable(f"cursor: {exc}", "query") from exc
    items, next_cursor = await AgentRepository(database).search(
        status=status_.value if status_ else None, resource=resource, q=q, after=after, limit=limit
    )
    seen = await _as_seen(principal, items, database)
    scores = await ReviewRepository(database).reputations([m.agent_id for m in seen])
    seen = [m.model_copy(update={"reputation": scores.get(m.agent_id)}) for m in seen]
    return AgentPage(items=seen, next_cursor=next_cursor)


@router.get("/{agent_id}", response_model=AgentManifest)
async def read_agent(
    principal: CurrentPrincipal, manifest: ExistingAgent, database: DatabaseDep
) -> AgentManifest:
    """An agent's manifest (retired agents stay readable), with its reputation. Another
    agent sees only its public group rooms; the agent itself, its operator and admins see
    all of them."""
    reputation = await ReviewRepository(database).reputation(manifest.agent_id)
    [seen] = await _as_seen(principal, [manifest], database)
    return seen.model_copy(update={"reputation": reputation.score if reputation else None})


@router.get("/{agent_id}/history", response_model=ManifestHistory)
async def read_agent_history(
    agent: OwnAgent,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ManifestHistory:
    """The manifest's last changes of its public page (status, activities, rooms,
    resources, profile), newest first: the agent itself, its operator, admins."""
    docs = await AgentRepository(database).history(agent.agent_id, limit)
    return ManifestHistory(
        agent_id=agent.agent_id, items=[ManifestChangeRecord.model_validate(d) for d in docs]
    )


@router.get("/{agent_id}/reviews", response_model=list[Review])
async def read_agent_reviews(
    _: CurrentPrincipal,
    manifest: ExistingAgent,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
) -> list[Review]:
    """The reviews the agent received for its tasks, oldest first (its reputation over
    time: the score in the manifest is computed from these)."""
    return await ReviewRepository(database).of_subject(manifest.agent_id, limit)


@router.get("/{agent_id}/card", response_model=AgentCard, dependencies=[Public], deprecated=True)
async def read_agent_card(
    manifest: ExistingAgent, settings: SettingsDep, database: DatabaseDep
) -> AgentCard:
    """An A2A-style Agent Card (A2A 0.3's shape), public like A2A's; presence is an Agora
    extension. Superseded by the signed A2A v1.0 card at
    ``/a2a/{agent_id}/.well-known/agent-card.json``."""
    base = f"{settings.api_url}/v1/agents/{manifest.agent_id}"
    return AgentCard(
        name=manifest.public_profile.name,
        description=manifest.public_profile.bio or f"Agora agent {manifest.agent_id}",
        url=base,
        skills=[
            AgentSkill(
                id=f"{resource.kind}:{resource.name}",
                name=resource.name,
                description=resource.description or f"{resource.kind} {resource.name}",
                tags=[resource.kind],
            )
            for resource in manifest.available_resources
        ],
        extensions={
            "agora/presence": {
                "status": manifest.status.value,
                "online": manifest.online_status,
                "last_seen": manifest.last_seen.isoformat() if manifest.last_seen else None,
            },
            "agora/reputation": (
                reputation.model_dump()
                if (reputation := await ReviewRepository(database).reputation(manifest.agent_id))
                else {"score": None, "reviews": 0}
            ),
            "agora/endpoints": {
                "manifest": base,
                "heartbeat": f"{base}/heartbeat",
            },
        },
    )


@router.patch("/{agent_id}", response_model=AgentManifest)
async def update_agent(
    body: AgentUpdate, agent: LiveOwnAgent, temporal: TemporalDep, cid: CorrelationId
) -> AgentManifest:
    """Change status, activities, resources or profile (the agent itself or an admin)."""
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    profile_fields = sorted(body.public_profile.model_fields_set) if body.public_profile else []
    change = ManifestChange(update=body, profile_fields=profile_fields, correlation_id=cid)
    return await handle.execute_update(AgentWorkflow.update_manifest, change)


@router.post("/{agent_id}/heartbeat", status_code=status.HTTP_202_ACCEPTED)
async def heartbeat_agent(
    agent: LiveOwnAgent, temporal: TemporalDep, cid: CorrelationId
) -> dict[str, str]:
    """Mark the agent online; it goes offline after a configured silence."""
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    await handle.signal(AgentWorkflow.heartbeat, Heartbeat(correlation_id=cid))
    return {"status": "accepted"}


@router.get("/{agent_id}/attention", response_model=AttentionView)
async def read_attention(agent: LiveOwnAgent, temporal: TemporalDep) -> AttentionView:
    """The agent's attention queue, scores and current focus (itself, its operator, admins)."""
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    return await handle.query(AgentWorkflow.attention)


@router.patch("/{agent_id}/attention", response_model=AttentionView)
async def update_attention(
    body: AttentionUpdate, agent: LiveOwnAgent, temporal: TemporalDep, cid: CorrelationId
) -> AttentionView:
    """Tune the scheduler, the weights, and per-dialogue importance and relationship."""
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    change = AttentionChange(update=body, correlation_id=cid)
    return await handle.execute_update(AgentWorkflow.tune_attention, change)


@router.delete("/{agent_id}", response_model=AgentManifest)
async def retire_agent(
    agent: LiveOwnAgent, temporal: TemporalDep, database: DatabaseDep, cid: CorrelationId
) -> AgentManifest:
    """Retire the agent: leaves its chats, revokes its token, keeps its manifest readable.
    Refused (409, naming them) while it has unfinished work on the market: a task it
    posted (cancel it), one assigned to it (finish it), or a bid on an open task
    (withdraw it). Its account keeps its balance, readable; it can neither pay nor be
    paid any more."""
    open_work = await TaskRepository(database).open_for(agent.agent_id)
    if open_work:
        named = ", ".join(f"{task_id} ({part}, {state})" for task_id, part, state in open_work)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"agent {agent.agent_id} has unfinished tasks: {named}; cancel the tasks it "
            "posted, finish those assigned to it, withdraw its bids, then retire it",
        )
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    return await handle.execute_update(AgentWorkflow.retire, RetireRequest(correlation_id=cid))


@router.post("/{agent_id}/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
async def rotate_token(
    agent: LiveOwnAgent, tokens: TokensDep, temporal: TemporalDep, cid: CorrelationId
) -> TokenIssued:
    """Issue a new token and revoke every earlier one (the agent itself, its operator, an
    admin). The agent's workflow records it, so a rotation and a retirement never cross."""
    issued = tokens.issue(agent.agent_id, "agent")
    handle = temporal.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent.agent_id))
    rotation = TokenRotation(
        token_id=issued.token_id, expires_at=issued.expires_at, correlation_id=cid
    )
    await handle.execute_update(AgentWorkflow.rotate_token, rotation)
    return TokenIssued(
        agent_id=agent.agent_id,
        token=issued.token,
        token_id=issued.token_id,
        expires_at=issued.expires_at,
    )


operators = APIRouter(prefix="/operators", tags=["operators"])


@operators.post("", status_code=status.HTTP_201_CREATED, response_model=OperatorCreated)
async def create_operator(
    body: OperatorCreate, _: AdminPrincipal, tokens: TokensDep, database: DatabaseDep
) -> OperatorCreated:
    """Register an operator (admin): it introduces, changes and retires its own agents."""
    now = datetime.now(UTC)
    created = await OperatorRepository(database).create(body.operator_id, body.name, now)
    if not created:
        raise HTTPException(status.HTTP_409_CONFLICT, f"operator {body.operator_id} exists")
    issued = tokens.issue(body.operator_id, "operator", now=now)
    await CredentialRepository(database).put(
        issued.token_id, body.operator_id, "operator", issued.expires_at
    )
    return OperatorCreated(
        operator_id=body.operator_id,
        name=body.name,
        token=issued.token,
        token_expires_at=issued.expires_at,
    )
