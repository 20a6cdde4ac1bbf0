"""LangChain calls, on their own task queue with their own concurrency limit."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from temporalio import activity
from temporalio.client import Client

from core.names import ChatHandlers, chat_workflow_id
from llm import MessageReader, chat_model, choose_speaker, compose_reply, roll
from models.chats import Message, MessageContext
from models.workflow_io import (
    AnalyseMessagesInput,
    ChooseSpeakerInput,
    ComposeInput,
    Reply,
    SpeakerChoice,
)
from persistence import AgentRepository, AttentionRepository, Database, MessageRepository
from persistence.contexts import ContextSaver, DialogueContext
from persistence.recent import RecentMessages

log = logging.getLogger("agora.worker.mind")


class Mind:
    """A hosted agent's thinking about one dialogue: its saved context, what was said
    since, the model's call, the context saved again.

    What was said since comes from this worker's recent messages when it holds the run
    whole, else from the store and the chat's accepted tail (delivery does not wait for
    the store). The context is kept here too, and used only when it is the one the
    agent's workflow last heard of (``context_seq``): another worker's later turn makes
    it stale, and it is read from the store again. Saving it waits for no turn, and is
    debounced per dialogue (``persistence.contexts``)."""

    CONTEXTS_KEPT = 20_000

    def __init__(
        self,
        database: Database,
        client: Client | None = None,
        default_model: str = "offline",
        base_url: str | None = None,
        recent: RecentMessages | None = None,
        saver: ContextSaver | None = None,
    ) -> None:
        self._contexts = AttentionRepository(database)
        self._saver = saver if saver is not None else ContextSaver(self._contexts)
        self._messages = MessageRepository(database)
        self._client = client
        self._default_model = default_model
        self._base_url = base_url
        self._recent = recent
        self._kept: OrderedDict[str, dict] = OrderedDict()

    async def compose(self, data: ComposeInput) -> Reply:
        context = await self._context(data)
        new = (
            self._recent.since(data.chat_id, context["last_seq"], data.through_seq)
            if (self._recent is not None)
            else None
        )
        if new is None:
            new = await self._messages.page(data.chat_id, context["last_seq"], 200)
            new += await self._unstored(data, new[-1].seq if new else context["last_seq"])
        history = context["history"] + [
            {"speaker": m.from_, "content": m.content[:2000]} for m in new
        ]
        last_seq = new[-1].seq if new else context["last_seq"]
        summary, history = roll(context["summary"], history)
        model_name = data.model if data.model != "offline" else self._default_model
        model = chat_model(model_name, base_url=self._base_url)
        started = time.perf_counter()
        text, tokens = await compose_reply(
            model,
            me=data.agent_id,
            name=data.name,
            persona=data.persona,
            bio=data.bio,
            skills=data.skills,
            summary=summary,
            history=history,
        )
        thought = time.perf_counter() - started
        self._save(data, summary, history, last_seq)
        return Reply(
            content=text[:16_000],
            tokens=tokens,
            context_lines=len(history),
            model_seconds=round(thought, 6),
            context_seq=last_seq,
        )

    async def _context(self, data: ComposeInput) -> dict:
        key = f"{data.agent_id}|{data.chat_id}"
        kept = self._kept.get(key)
        if kept is not None and kept["last_seq"] == data.context_seq:
            self._kept.move_to_end(key)
            return kept
        return await self._contexts.get_context(data.agent_id, data.chat_id)

    def _save(self, data: ComposeInput, summary: str, history: list[dict], last_seq: int) -> None:
        key = f"{data.agent_id}|{data.chat_id}"
        self._kept[key] = {"summary": summary, "history": history, "last_seq": last_seq}
        self._kept.move_to_end(key)
        while len(self._kept) > self.CONTEXTS_KEPT:
            self._kept.popitem(last=False)
        self._saver.save(DialogueContext(data.agent_id, data.chat_id, summary, history, last_seq))

    async def _unstored(self, data: ComposeInput, stored_through: int) -> list[Message]:
        """The chat's accepted messages the store does not hold yet, when the agent was
        told of more than the store gave (delivery does not wait for the store)."""
        if self._client is None or data.through_seq <= stored_through:
            return []
        handle = self._client.get_workflow_handle(chat_workflow_id(data.chat_id))
        try:
            tail = await handle.query(ChatHandlers.TAIL, stored_through, result_type=list[Message])
        except Exception as exc:  # a closed chat's store holds everything: nothing missing
            log.info("no tail for chat %s: %s", data.chat_id, type(exc).__name__)
            return []
        return [m for m in tail if m.seq > stored_through][:200]


class LlmActivities:
    def __init__(
        self,
        database: Database,
        default_model: str = "offline",
        base_url: str | None = None,
        analyser=None,
        client: Client | None = None,
        recent: RecentMessages | None = None,
        saver: ContextSaver | None = None,
    ) -> None:
        self._mind = Mind(database, client, default_model, base_url, recent, saver)
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
        return await self._mind.compose(data)

    @activity.defn(name="choose_speaker")
    async def choose_speaker(self, data: ChooseSpeakerInput) -> SpeakerChoice:
        """Ask the chat model who speaks next (the workflow checks the answer)."""
        model = chat_model(data.model or self._default_model, base_url=self._base_url)
        raw = await choose_speaker(
            model,
            data.topic,
            [(line.speaker, line.text) for line in data.transcript],
            data.candidates,
        )
        return SpeakerChoice(raw=raw[:200])
