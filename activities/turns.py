"""A hosted agent's turn in one step, for a model that answers in-process.

With the offline model (or any model that runs in the worker and answers in
milliseconds), a turn used to be two activities, each a trip through the server's task
queues and a workflow task for its answer: compose on the LLM queue, then post, then
yield. Here it is one local activity of the agent's workflow task: compose, then post
with ``yield``. A remote model stays a regular activity on the LLM queue, with its own
concurrency limit (``AgentWorkflow._speak``).

A retry composes again and posts with the same update id, so the chat takes the post
once.
"""

from __future__ import annotations

from temporalio import activity

from activities.chat_actions import ChatActions
from activities.llm import Mind
from models.workflow_io import SpeakInput, Spoken


class TurnActivities:
    def __init__(self, mind: Mind, actions: ChatActions) -> None:
        self._mind = mind
        self._actions = actions

    @activity.defn(name="speak")
    async def speak(self, data: SpeakInput) -> Spoken:
        """Compose the reply, then post it (yielding the floor with it, when asked)."""
        reply = await self._mind.compose(data.compose)
        post = data.post.model_copy(
            update={
                "content": reply.content,
                "model_seconds": reply.model_seconds,
                "tokens": reply.tokens,
            }
        )
        posted = await self._actions.post_as_agent(post)
        return Spoken(reply=reply, posted=posted, floor_yielded=posted and post.yield_floor)
