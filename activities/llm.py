"""LangChain calls, on their own task queue with their own concurrency limit."""

from __future__ import annotations

from temporalio import activity

from llm import MessageReader, chat_model, choose_speaker, compose_reply, roll
from models.chats import MessageContext
from models.workflow_io import (
    AnalyseMessagesInput,
    ChooseSpeakerInput,
    ComposeInput,
    Reply,
    SpeakerChoice,
)
from persistence import AgentRepository, AttentionRepository, Database, MessageRepository


class LlmActivities:
    def __init__(
        self,
        database: Database,
        default_model: str = "offline",
        base_url: str | None = None,
        analyser=None,
    ) -> None:
        self._contexts = AttentionRepository(database)
        self._messages = MessageRepository(database)
        self._reader = MessageReader(AgentRepository(database), analyser)
        self._default_model = default_model
        self._base_url = base_url

    @activity.defn(name="analyse_messages")
    async def analyse_messages(self, data: AnalyseMessagesInput) -> dict[int, MessageContext]:
        """The processing step (mentions, importance, intent) over a delivered batch."""
        return await self._reader.analyse(data.messages, data.members)

    @activity.defn(name="compose_reply")
    async def compose_reply(self, data: ComposeInput) -> Reply:
        """Load the dialogue's context, catch up on new messages, think, save the context."""
        context = await self._contexts.get_context(data.agent_id, data.chat_id)
        new = await self._messages.page(data.chat_id, context["last_seq"], 200)
        history = context["history"] + [
            {"speaker": m.from_, "content": m.content[:2000]} for m in new
        ]
        last_seq = new[-1].seq if new else context["last_seq"]
        summary, history = roll(context["summary"], history)
        model_name = data.model if data.model != "offline" else self._default_model
        model = chat_model(model_name, base_url=self._base_url)
        text, tokens = await compose_reply(
            model, me=data.agent_id, name=data.name, persona=data.persona, bio=data.bio,
            skills=data.skills, summary=summary, history=history,
        )  # fmt: skip
        await self._contexts.put_context(data.agent_id, data.chat_id, summary, history, last_seq)
        return Reply(content=text[:16_000], tokens=tokens, context_lines=len(history))

    @activity.defn(name="choose_speaker")
    async def choose_speaker(self, data: ChooseSpeakerInput) -> SpeakerChoice:
        """Ask the chat model who speaks next (the workflow checks the answer)."""
        model = chat_model(data.model or self._default_model, base_url=self._base_url)
        raw = await choose_speaker(
            model, data.topic, [(line.speaker, line.text) for line in data.transcript],
            data.candidates,
        )  # fmt: skip
        return SpeakerChoice(raw=raw[:200])
