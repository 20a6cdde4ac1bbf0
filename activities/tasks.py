"""What a task's workflow asks of the rest: the poster's escrow (through the poster's own
workflow, which serialises its debits), the task chat, the assignee's activities, the
task projection, reviews and reputation."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from activities.ledger import debit_agent
from activities.running import signal_if_running, update_if_running
from core.names import (
    CHAT_WORKFLOW,
    PLATFORM,
    AgentHandlers,
    ChatHandlers,
    TaskHandlers,
    agent_workflow_id,
    chat_workflow_id,
    task_workflow_id,
)
from core.temporal import CHAT_ID, KIND, STATUS, TASK_ID
from models.chats import ChatPublic, Member, Role
from models.market import DebitRequest, DebitResult, Reputation, escrow_account
from models.workflow_io import (
    ChatStart,
    ChatState,
    EscrowInput,
    PostMessage,
    StoreReviewInput,
    StoreTaskInput,
    SubmitAsAgent,
    TaskActivityChange,
    TaskBrief,
    TaskChatInput,
    TaskCommand,
)
from persistence import AgentRepository, Database, ReviewRepository, TaskRepository


def task_chat_id(task_id: str) -> str:
    return f"task-{task_id}"


class TaskActivities:
    def __init__(self, database: Database, client: Client) -> None:
        self._tasks = TaskRepository(database)
        self._reviews = ReviewRepository(database)
        self._agents = AgentRepository(database)
        self._client = client

    @activity.defn(name="escrow_reward")
    async def escrow_reward(self, data: EscrowInput) -> DebitResult:
        """Move the reward from the poster's account into the task's escrow; the update id
        is the entry id, so a retry is one debit. Insufficient funds: non-retryable."""
        entry_id = f"escrow/{data.task_id}"
        request = DebitRequest(
            entry_id=entry_id,
            credit=escrow_account(data.task_id),
            amount=data.amount,
            kind="escrow",
            memo=f"reward of task {data.task_id}",
            task_id=data.task_id,
            correlation_id=data.correlation_id,
        )
        return await debit_agent(self._client, data.poster, request)

    @activity.defn(name="store_task")
    async def store_task(self, data: StoreTaskInput) -> bool:
        return await self._tasks.upsert(data.task)

    @activity.defn(name="open_task_chat")
    async def open_task_chat(self, data: TaskChatInput) -> str:
        """The poster and the assignee's chat for this task (the same chat on a retry).
        A hosted party is marked so, as in any chat: its inbox gets no copies."""
        chat_id = task_chat_id(data.task_id)
        now = datetime.now(UTC)
        hosted = set()
        for agent_id in (data.poster, data.assignee):
            manifest = await self._agents.get(agent_id)
            if manifest is not None and manifest.hosted:
                hosted.add(agent_id)
        members = {
            agent_id: Member(agent_id=agent_id, role=role, joined_at=now, hosted=agent_id in hosted)
            for agent_id, role in ((data.poster, Role.OWNER), (data.assignee, Role.MEMBER))
        }
        chat = ChatPublic(
            chat_id=chat_id,
            type="group",
            topic=f"task: {data.title}"[:300],
            join_rule="invite",
            created_by=data.poster,
            created_at=now,
            members=list(members.values()),
        )
        state = ChatState(chat=chat, members=members, llm_task_queue=data.llm_task_queue)
        await self._client.start_workflow(
            CHAT_WORKFLOW,
            ChatStart(state=state),
            id=chat_workflow_id(chat_id),
            task_queue=data.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(CHAT_ID, chat_id),
                    SearchAttributePair(TASK_ID, data.task_id),
                    SearchAttributePair(STATUS, "open"),
                    SearchAttributePair(KIND, "chat.task"),
                ]
            ),
            static_summary=f"Task chat {chat_id}",
            memo={"summary": f"Task chat of {data.poster} and {data.assignee}: {data.title}"},
        )
        handle = self._client.get_workflow_handle(chat_workflow_id(chat_id))
        await handle.execute_update(ChatHandlers.OPEN)
        return chat_id

    @activity.defn(name="set_task_activity")
    async def set_task_activity(self, change: TaskActivityChange) -> None:
        """Add the task to (or drop it from) the agent's ``current_activities``."""
        handle = self._client.get_workflow_handle(agent_workflow_id(change.agent_id))
        # a retired agent has no activities left to change: nothing to do
        await signal_if_running(handle, AgentHandlers.TASK_ACTIVITY, change)

    @activity.defn(name="post_task_brief")
    async def post_task_brief(self, data: TaskBrief) -> None:
        """The platform's note in the task chat (the brief, a rejection's reason)."""
        handle = self._client.get_workflow_handle(chat_workflow_id(data.chat_id))
        post = PostMessage(sender=PLATFORM, content=data.text, message_type="system", platform=True)
        await update_if_running(handle, ChatHandlers.POST_MESSAGE, post, id=data.update_id)

    @activity.defn(name="submit_as_agent")
    async def submit_as_agent(self, data: SubmitAsAgent) -> bool:
        """A hosted assignee submits its work; False if the task no longer takes it."""
        handle = self._client.get_workflow_handle(task_workflow_id(data.task_id))
        command = TaskCommand(actor=data.agent_id, result=data.result)
        try:
            running, _ = await update_if_running(
                handle, TaskHandlers.SUBMIT, command, id=data.update_id
            )
        except WorkflowUpdateFailedError:
            return False
        return running

    @activity.defn(name="store_review")
    async def store_review(self, data: StoreReviewInput) -> Reputation:
        await self._reviews.add(data.review)
        return await self._reviews.recompute(data.review.subject)

    @activity.defn(name="recompute_reputation")
    async def recompute_reputation(self, agent_id: str) -> Reputation:
        return await self._reviews.recompute(agent_id)
