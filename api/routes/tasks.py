"""The task marketplace: post (with escrow), bid, assign, submit, accept or reject, review."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    AgentPrincipal,
    CorrelationId,
    CurrentPrincipal,
    DatabaseDep,
    PathAgentId,
    Principal,
    SettingsDep,
    TemporalDep,
    requirement,
)
from api.errors import unprocessable
from api.routes.skills import add_skill
from core.names import PLATFORM, task_workflow_id
from core.settings import Settings
from core.temporal import KIND, STATUS, TASK_ID
from models.agents import AgentStatus
from models.market import (
    AssignRequest,
    BidCreate,
    Candidate,
    LedgerEntry,
    RejectRequest,
    ReviewCreate,
    Skill,
    SubmitRequest,
    Task,
    TaskCreate,
    TaskPage,
    TaskStatus,
    descendants,
    satisfies,
)
from models.workflow_io import TaskCommand, TaskStart, TaskState
from persistence import (
    AgentRepository,
    Database,
    LedgerRepository,
    ReviewRepository,
    SkillRepository,
    TaskRepository,
)
from workflows.task import TaskWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"])

PathTaskId = Annotated[str, Path(min_length=1, max_length=80)]


@requirement("object:task-exists")
async def existing_task(task_id: PathTaskId, database: DatabaseDep) -> Task:
    task = await TaskRepository(database).get(task_id)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
    return task


ExistingTask = Annotated[Task, Depends(existing_task)]


def _actor(principal: Principal) -> str:
    return PLATFORM if principal.is_admin else principal.agent_id or "nobody"


def _seen(task: Task, principal: Principal) -> Task:
    return task.seen_by(principal.agent_id, admin=principal.is_admin)


async def _update(temporal, task: Task, update, command: TaskCommand, principal: Principal) -> Task:
    """Send a command to the task's workflow and answer with the task as the caller may see
    it; a task whose workflow has finished (settled and reviewed, expired, refunded) takes
    no more commands: 409."""
    handle = temporal.get_workflow_handle_for(TaskWorkflow.run, task_workflow_id(task.task_id))
    try:
        return _seen(await handle.execute_update(update, command), principal)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"task {task.task_id} is {task.status} and closed"
            ) from exc
        raise


async def _catalogued(database: Database, required: list[str], settings: Settings) -> None:
    """422 for a required skill outside the catalogue; with an open catalogue, a skill that
    some agent offers joins it as a root first."""
    known = {s.name for s in await SkillRepository(database).all()}
    unknown = sorted(set(required) - known)
    if unknown and settings.skills_catalogue == "open":
        agents = AgentRepository(database)
        for name in list(unknown):
            offered, _ = await agents.search(resource=name, limit=1)
            if offered:
                await add_skill(database, Skill(name=name, description="named by a task"))
                unknown.remove(name)
    if unknown:
        raise unprocessable(f"skills_required: not in the catalogue: {', '.join(unknown)}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Task)
async def create_task(
    body: TaskCreate,
    principal: AgentPrincipal,
    settings: SettingsDep,
    temporal: TemporalDep,
    database: DatabaseDep,
    cid: CorrelationId,
) -> Task:
    """Post work: the reward moves into escrow first (409 without the funds, and nothing
    is posted), then ``task.posted`` goes out."""
    now = datetime.now(UTC)
    deadline = body.deadline if body.deadline.tzinfo else body.deadline.replace(tzinfo=UTC)
    if deadline <= now:
        raise unprocessable("deadline: must be in the future")
    if deadline > now + timedelta(days=settings.task_horizon_days):
        raise unprocessable(f"deadline: at most {settings.task_horizon_days} days ahead")
    closes = now + timedelta(seconds=body.bidding_window) if body.bidding_window else None
    if closes is not None and closes >= deadline:
        raise unprocessable("bidding_window: must close before the deadline")
    await _catalogued(database, body.skills_required, settings)
    task_id = f"t-{uuid.uuid4().hex[:16]}"
    task = Task(
        task_id=task_id,
        poster=principal.agent_id or "",
        title=body.title,
        description=body.description,
        skills_required=body.skills_required,
        reward=body.reward,
        deadline=deadline,
        bidding_closes_at=closes,
        created_at=now,
    )
    state = TaskState(
        task=task,
        task_queue=settings.task_queue,
        llm_task_queue=settings.llm_task_queue,
        review_window_seconds=settings.review_window_seconds,
    )
    start = WithStartWorkflowOperation(
        TaskWorkflow.run,
        TaskStart(state=state, correlation_id=cid),
        id=task_workflow_id(task_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TASK_ID, task_id),
                SearchAttributePair(STATUS, "open"),
                SearchAttributePair(KIND, "task"),
            ]
        ),
        static_summary=f"Task {task_id}: {body.title}"[:200],
        memo={"summary": f"Task '{body.title}' posted by {task.poster} for {body.reward} tokens"},
    )
    return await temporal.execute_update_with_start_workflow(
        TaskWorkflow.posted, start_workflow_operation=start
    )


@router.get("", response_model=TaskPage)
async def read_tasks(
    principal: CurrentPrincipal,
    database: DatabaseDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    skill: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskPage:
    """Tasks by status and required skill, newest first. A result is shown to the poster
    and the assignee only, and bids' prices and notes to the poster (each bidder sees its
    own)."""
    tasks = await TaskRepository(database).search(status_, skill, limit)
    return TaskPage(items=[_seen(task, principal) for task in tasks])


@router.get("/{task_id}", response_model=Task)
async def read_task(principal: CurrentPrincipal, task: ExistingTask) -> Task:
    """A task as the caller may see it (the result and the bids as ``GET /v1/tasks`` says)."""
    return _seen(task, principal)


@router.get(
    "/{task_id}/ledger",
    response_model=list[LedgerEntry],
    responses={403: {"description": "only the poster, the assignee and admins see it"}},
)
async def read_task_ledger(
    principal: CurrentPrincipal, task: ExistingTask, database: DatabaseDep
) -> list[LedgerEntry]:
    """The task's movements of tokens (escrow, release, refund), oldest first: the
    poster, the assignee and admins."""
    if not principal.is_admin and principal.agent_id not in (task.poster, task.assignee):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only the poster, the assignee and admins see a ledger"
        )
    return await LedgerRepository(database).of_task(task.task_id)


@router.get("/{task_id}/candidates", response_model=list[Candidate])
async def read_candidates(
    _: CurrentPrincipal, task: ExistingTask, database: DatabaseDep
) -> list[Candidate]:
    """Agents who have the skills, best first: skill match (half), reputation (three
    tenths) and availability (a fifth: status and presence)."""
    skills = await SkillRepository(database).all()
    wanted = set()
    for need in task.skills_required:
        wanted |= descendants(skills, need)
    holders = await SkillRepository(database).agents_with(wanted) if wanted else {}
    reputations = await ReviewRepository(database).reputations(list(holders))
    agents = AgentRepository(database)
    ranked = []
    for agent_id, held in holders.items():
        if agent_id == task.poster or not satisfies(held, task.skills_required, skills):
            continue
        manifest = await agents.get(agent_id)
        if manifest is None or manifest.status == AgentStatus.RETIRED:
            continue
        exact = sum(1 for need in task.skills_required if need in held)
        match = 0.5 + 0.5 * exact / max(1, len(task.skills_required))
        availability = {"active": 1.0, "idle": 0.8, "busy": 0.4}.get(manifest.status, 0.1)
        availability *= 1.0 if manifest.online_status else 0.7
        availability /= 1 + 0.1 * len(manifest.current_activities)
        reputation = reputations.get(agent_id, 3.0)
        score = 0.5 * match + 0.3 * reputation / 5 + 0.2 * availability
        ranked.append(
            Candidate(
                agent_id=agent_id,
                name=manifest.public_profile.name,
                score=round(score, 4),
                skill_match=round(match, 4),
                reputation=reputation,
                availability=round(availability, 4),
            )
        )
    return sorted(ranked, key=lambda c: (-c.score, c.agent_id))


@router.post("/{task_id}/bids", status_code=status.HTTP_201_CREATED, response_model=Task)
async def create_bid(
    body: BidCreate,
    principal: AgentPrincipal,
    task: ExistingTask,
    database: DatabaseDep,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> Task:
    """Bid a price within the reward (agents with the required skills)."""
    skills = await SkillRepository(database).all()
    held = await SkillRepository(database).of_agent(principal.agent_id or "")
    reputation = await ReviewRepository(database).reputation(principal.agent_id or "")
    command = TaskCommand(
        actor=_actor(principal),
        price=body.price,
        note=body.note,
        qualified=satisfies(held, task.skills_required, skills),
        reputation=reputation.score if reputation else 3.0,
        correlation_id=cid,
    )
    return await _update(temporal, task, TaskWorkflow.place_bid, command, principal)


@router.delete("/{task_id}/bids/{agent_id}", response_model=Task)
async def delete_bid(
    agent_id: PathAgentId,
    principal: AgentPrincipal,
    task: ExistingTask,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> Task:
    """Withdraw your bid while the task is open (the bidder itself)."""
    if principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the bidder withdraws its bid")
    command = TaskCommand(actor=agent_id, correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.withdraw_bid, command, principal)


@router.post("/{task_id}/cancel", response_model=Task)
async def cancel_task(
    principal: CurrentPrincipal, task: ExistingTask, temporal: TemporalDep, cid: CorrelationId
) -> Task:
    """The poster (or an admin) cancels an open task: the whole reward returns from escrow."""
    command = TaskCommand(actor=_actor(principal), correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.cancel, command, principal)


@router.post("/{task_id}/assign", response_model=Task)
async def assign_task(
    body: AssignRequest,
    principal: CurrentPrincipal,
    task: ExistingTask,
    temporal: TemporalDep,
    database: DatabaseDep,
    cid: CorrelationId,
) -> Task:
    """The poster picks a bidder (or waits for the bidding window to pick the best); a
    retired bidder is not assigned (409)."""
    bidder = await AgentRepository(database).get(body.agent_id)
    if bidder is not None and bidder.status == AgentStatus.RETIRED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {body.agent_id} is retired")
    command = TaskCommand(actor=_actor(principal), agent_id=body.agent_id, correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.assign, command, principal)


@router.post("/{task_id}/submit", response_model=Task)
async def submit_task(
    body: SubmitRequest,
    principal: AgentPrincipal,
    task: ExistingTask,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> Task:
    command = TaskCommand(actor=_actor(principal), result=body.result, correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.submit, command, principal)


@router.post("/{task_id}/accept", response_model=Task)
async def accept_task(
    principal: CurrentPrincipal, task: ExistingTask, temporal: TemporalDep, cid: CorrelationId
) -> Task:
    """The poster accepts: escrow pays the bid price to the assignee, the rest returns."""
    command = TaskCommand(actor=_actor(principal), correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.accept, command, principal)


@router.post("/{task_id}/reject", response_model=Task)
async def reject_task(
    body: RejectRequest,
    principal: CurrentPrincipal,
    task: ExistingTask,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> Task:
    """The poster rejects with a reason: one resubmission, then the escrow returns."""
    command = TaskCommand(actor=_actor(principal), reason=body.reason, correlation_id=cid)
    return await _update(temporal, task, TaskWorkflow.reject, command, principal)


@router.post("/{task_id}/reviews", status_code=status.HTTP_201_CREATED, response_model=Task)
async def review_task(
    body: ReviewCreate,
    principal: AgentPrincipal,
    task: ExistingTask,
    temporal: TemporalDep,
    cid: CorrelationId,
) -> Task:
    """After settlement, the poster and the assignee each review the other once."""
    if principal.agent_id not in (task.poster, task.assignee):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the poster and the assignee review")
    command = TaskCommand(
        actor=_actor(principal), rating=body.rating, comment=body.comment, correlation_id=cid
    )
    return await _update(temporal, task, TaskWorkflow.review, command, principal)
