"""MongoDB writes, each idempotent (deterministic ids, upserts, versioned replaces)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from llm import MessageReader
from models.agents import AgentManifest
from models.chats import MessageContext
from models.workflow_io import (
    RevokeCredentialsInput,
    StoreAttentionInput,
    StoreChatInput,
    StoreContextsInput,
    StoreCredentialInput,
    StoreFloorInput,
    StoreManifestInput,
    StoreMessagesInput,
    StoreMessagesResult,
    StoreReadMarksInput,
)
from persistence import (
    AgentRepository,
    AttentionRepository,
    ChatRepository,
    CredentialRepository,
    Database,
    FloorRepository,
    MessageRepository,
    SkillRepository,
)
from persistence.recent import RecentMessages


class StoreActivities:
    """Holds the repositories; built once by the worker."""

    def __init__(
        self, database: Database, analyser=None, recent: RecentMessages | None = None
    ) -> None:
        self._agents = AgentRepository(database)
        self._credentials = CredentialRepository(database)
        self._skills = SkillRepository(database)
        self._chats = ChatRepository(database)
        self._messages = MessageRepository(database)
        self._floors = FloorRepository(database)
        self._attention = AttentionRepository(database)
        self._reader = MessageReader(self._agents, analyser)
        self._recent = recent

    @activity.defn(name="store_manifest")
    async def store_manifest(self, data: StoreManifestInput) -> bool:
        """Store the agent's manifest unless a newer version is already there."""
        stored = await self._agents.upsert(data.manifest)
        if stored and data.manifest.version == 0 and not _skills(data.manifest):
            return stored  # a new agent offering no skill: nothing to link or unlink
        # the catalogue skills the newest stored manifest offers, linked (agent_skills);
        # from what is stored, so a retry after a crash links them too (this one, when it
        # was the write that stored it: no read back)
        newest = data.manifest if stored else await self._agents.get(data.manifest.agent_id)
        if newest is not None:
            await self._skills.link(newest.agent_id, _skills(newest))
        return stored

    @activity.defn(name="store_credential")
    async def store_credential(self, data: StoreCredentialInput) -> None:
        """Record an agent's token id (idempotent); on rotation, revoke the others after."""
        await self._credentials.put(data.token_id, data.agent_id, "agent", data.expires_at)
        if data.revoke_others:
            await self._credentials.revoke_subject(
                data.agent_id, "agent", data.at or data.expires_at, keep=data.token_id
            )

    @activity.defn(name="revoke_credentials")
    async def revoke_credentials(self, data: RevokeCredentialsInput) -> int:
        """Revoke every live token of an agent (retirement); a retry finds none left."""
        return await self._credentials.revoke_subject(data.agent_id, "agent", data.at)

    @activity.defn(name="store_chat")
    async def store_chat(self, data: StoreChatInput) -> bool:
        """Store the chat and its memberships unless a newer version is already there."""
        return await self._chats.upsert(data.chat)

    @property
    def reads_quickly(self) -> bool:
        """The processing step here is the offline reader (microseconds a message)."""
        return self._reader.quick

    async def read(self, messages: list, members: list[str], timeout: float) -> dict:
        """The processing step over a batch, by seq, bounded in time: a failure or a late
        answer reads nothing (a message is never held back for its analysis)."""
        try:
            return await asyncio.wait_for(self._reader.analyse(messages, members), timeout)
        except Exception:
            activity.logger.warning("message analysis failed; storing without it", exc_info=True)
            return {}

    def hold(self, messages: list) -> None:
        """Keep accepted messages among this worker's recent messages, for its hosted
        agents' turns (the next speaker's turn reads them here, not from the store)."""
        if self._recent is not None:
            self._recent.add(messages)

    async def store_read(
        self, messages: list, contexts: dict[int, MessageContext], *, raise_last_seq: bool = True
    ) -> int:
        """Store a batch with what the processing step read in it, by deterministic ids
        (and keep it among this worker's recent messages, for its hosted agents' turns);
        then raise the chat's stored ``last_seq`` to the batch's last, unless the caller
        raises it otherwise (``raise_last_seq=False``: a delivery step raises it with the
        members' notices)."""
        self.hold(messages)
        read = [m.model_copy(update={"langchain_context": contexts.get(m.seq)}) for m in messages]
        stored = await self._messages.store(read)
        if raise_last_seq:
            last = read[-1]
            await self.raise_last_seq(last.chat_id, last.seq)
        return stored

    async def raise_last_seq(self, chat_id: str, seq: int) -> None:
        """Raise the chat's stored ``last_seq`` to ``seq`` (never lowers it). A keyed write:
        on FerretDB v1 it scans ``chats``, so the delivery step does it once a notice
        interval, not once a batch."""
        await self._chats.raise_last_seq(chat_id, seq)

    @activity.defn(name="store_messages")
    async def store_messages(self, data: StoreMessagesInput) -> StoreMessagesResult:
        """Read each message with the processing step (bounded in time; a failure stores the
        message without it), then store the batch by deterministic ids."""
        contexts: dict[int, MessageContext] = {}
        if data.read:
            contexts = await self.read(data.messages, data.members, data.analysis_timeout_seconds)
        stored = await self.store_read(data.messages, contexts)
        return StoreMessagesResult(stored=stored, contexts=contexts)

    @activity.defn(name="store_contexts")
    async def store_contexts(self, data: StoreContextsInput) -> int:
        """Write a late processing step's reading onto stored messages (idempotent)."""
        return await self._messages.set_contexts(data.chat_id, data.contexts)

    @activity.defn(name="store_read_marks")
    async def store_read_marks(self, data: StoreReadMarksInput) -> None:
        """Move members' read watermarks forward."""
        await self._chats.mark_read(data.chat_id, data.read_seq)

    @activity.defn(name="store_floor")
    async def store_floor(self, data: StoreFloorInput) -> None:
        """Project the floor (holder, queue) to ``speaker_queues``."""
        await self._floors.put(data.chat_id, data.floor)

    @activity.defn(name="store_attention")
    async def store_attention(self, data: StoreAttentionInput) -> None:
        """Project the agent's attention (focus, scored dialogues) to MongoDB."""
        await self._attention.put_state(data.agent_id, data.attention.model_dump(mode="python"))


def _skills(manifest: AgentManifest) -> list[str]:
    """The names of the skills a manifest offers (the catalogue decides which count)."""
    return [r.name for r in manifest.available_resources if r.kind == "skill"]
