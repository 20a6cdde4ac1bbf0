"""A hosted agent acts in a chat like any other member: through the chat workflow's updates.

Workflows cannot send updates to other workflows, so these activities do, with the
worker's Temporal client. Update ids are deterministic, so a retried post is one post.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError

from activities.running import signal_if_running, update_if_running
from core.names import AgentHandlers, ChatHandlers, agent_workflow_id, chat_workflow_id
from models.workflow_io import (
    ActAsAgentInput,
    FloorCommand,
    FloorSignal,
    NotifyMembersInput,
    PostAnswer,
    PostMessage,
)
from persistence.recent import RecentMessages


class ChatActions:
    def __init__(self, client: Client, recent: RecentMessages | None = None) -> None:
        self._client = client
        self._recent = recent

    def _chat(self, chat_id: str):
        return self._client.get_workflow_handle(chat_workflow_id(chat_id))

    @activity.defn(name="notify_members")
    async def notify_members(self, data: NotifyMembersInput) -> int:
        """Signal each member's agent workflow its notice, all at once; an agent that has
        retired is not told. A retry may tell one twice: an agent drops a notice of
        messages it has already counted (by ``last_seq``). Returns how many were told."""
        told = await asyncio.gather(
            *(
                signal_if_running(
                    self._client.get_workflow_handle(agent_workflow_id(agent_id)),
                    AgentHandlers.DIALOGUE_NOTICE,
                    notice,
                )
                for agent_id, notice in data.notices.items()
            )
        )
        return sum(told)

    @activity.defn(name="post_as_agent")
    async def post_as_agent(self, data: ActAsAgentInput) -> bool:
        """Post the hosted agent's reply (yielding the floor with it, when asked); False
        when the chat refused it (the floor moved on)."""
        handle = self._chat(data.chat_id)
        post = PostMessage(
            sender=data.agent_id,
            content=data.content or "",
            yield_floor=data.yield_floor,
            ask_again=data.ask_again,
            model_seconds=data.model_seconds,
            tokens=data.tokens,
        )
        try:
            running, answer = await update_if_running(
                handle, ChatHandlers.POST_MESSAGE, post, id=data.update_id, result_type=PostAnswer
            )
        except WorkflowUpdateFailedError:
            return False
        if answer is not None and answer.handover_to and answer.handover is not None:
            # the grant this post made: the next speaker hears of it now, not after the
            # chat's deliver step (a retry repeats the update's answer, so it may tell
            # twice; a second grant notice of one turn ends in a refused post); its turn
            # finds this post in the worker's memory
            if self._recent is not None and answer.message is not None:
                self._recent.add([answer.message])
            await signal_if_running(
                self._client.get_workflow_handle(agent_workflow_id(answer.handover_to)),
                AgentHandlers.DIALOGUE_NOTICE,
                answer.handover,
            )
        return running

    @activity.defn(name="yield_floor")
    async def yield_floor(self, data: ActAsAgentInput) -> bool:
        """Yield the floor the hosted agent holds (no-op if it no longer does)."""
        handle = self._chat(data.chat_id)
        command = FloorCommand(actor=data.agent_id)
        try:
            running, _ = await update_if_running(
                handle, ChatHandlers.RELEASE_FLOOR, command, id=data.update_id
            )
        except WorkflowUpdateFailedError:
            return False
        return running

    @activity.defn(name="request_floor")
    async def request_floor(self, data: ActAsAgentInput) -> None:
        """Ask for the floor on the hosted agent's behalf (a signal, like any member's RTS)."""
        handle = self._chat(data.chat_id)
        await signal_if_running(
            handle,
            ChatHandlers.REQUEST_FLOOR,
            FloorSignal(agent_id=data.agent_id, reason="has something to say"),
        )
