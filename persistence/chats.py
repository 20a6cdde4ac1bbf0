"""Chats, memberships (``agent_chats``) with their receipt watermarks, and messages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from models.chats import ChatPublic, Message, MessageContext, message_id_for
from models.floor import FloorState
from persistence.client import Database


def encode_chat_cursor(chat: ChatPublic) -> str:
    raw = json.dumps([chat.created_at.isoformat(), chat.chat_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_chat_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, chat_id) a cursor names; ValueError for one this API did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, chat_id = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor this API issued") from exc
    if not isinstance(chat_id, str) or when.tzinfo is None:
        raise ValueError("not a cursor this API issued")
    return when, chat_id


class ChatRepository:
    """``chats`` and ``agent_chats``: written by ChatWorkflow's activities, read by the API."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._chats = database.db["chats"]
        self._memberships = database.db["agent_chats"]

    async def upsert(self, chat: ChatPublic) -> bool:
        """Store the chat and its memberships unless a newer version is already stored."""
        doc = chat.model_dump(mode="python")
        doc["_id"] = chat.chat_id
        doc["participants"] = [m.agent_id for m in chat.members]
        try:
            await self._chats.replace_one(
                {"_id": chat.chat_id, "version": {"$lt": chat.version}}, doc, upsert=True
            )
        except DuplicateKeyError:
            return False
        members = [m.agent_id for m in chat.members]
        if members:
            await self._database.bulk_write(
                self._memberships,
                [
                    UpdateOne(
                        {"agent_id": m.agent_id, "chat_id": chat.chat_id},
                        {
                            "$set": {"role": m.role.value, "joined_at": m.joined_at},
                            "$setOnInsert": {"read_seq": 0, "delivered_seq": 0},
                        },
                        upsert=True,
                    )
                    for m in chat.members
                ],
            )
        await self._memberships.delete_many(
            {"chat_id": chat.chat_id, "agent_id": {"$nin": members}}
        )
        return True

    async def get(self, chat_id: str) -> ChatPublic | None:
        doc = await self._chats.find_one({"_id": chat_id})
        return ChatPublic.model_validate(doc) if doc else None

    async def page(
        self, member: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> tuple[list[ChatPublic], str | None]:
        """Chats newest first (one member's, or every chat), after a cursor."""
        query: dict = {"participants": member} if member else {}
        if after is not None:
            at, chat_id = after
            query["$or"] = [
                {"created_at": {"$lt": at}},
                {"created_at": at, "_id": {"$lt": chat_id}},
            ]
        docs = (
            await self._chats.find(query)
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit + 1)
            .to_list()
        )
        items = [ChatPublic.model_validate(doc) for doc in docs[:limit]]
        more = len(docs) > limit
        return items, (encode_chat_cursor(items[-1]) if more else None)

    async def public_groups(self, chat_ids: list[str]) -> set[str]:
        """Which of these chats are open public groups (one query for a page of agents)."""
        if not chat_ids:
            return set()
        query = {"_id": {"$in": sorted(set(chat_ids))}, "type": "group", "join_rule": "public"}
        return {doc["_id"] async for doc in self._chats.find(query | {"closed": False}, {"_id": 1})}

    async def raise_last_seq(self, chat_id: str, seq: int) -> None:
        await self._chats.update_one({"_id": chat_id}, {"$max": {"last_seq": seq}})

    async def mark_read(self, chat_id: str, read_seq: dict[str, int]) -> None:
        await self._database.bulk_write(
            self._memberships,
            [
                UpdateOne(
                    {"agent_id": agent_id, "chat_id": chat_id},
                    {"$max": {"read_seq": seq, "delivered_seq": seq}},
                )
                for agent_id, seq in read_seq.items()
            ],
        )

    async def mark_delivered(self, agent_id: str, chat_id: str, seq: int) -> None:
        """Monotonic: a redelivered or late event never moves the watermark back."""
        await self._memberships.update_one(
            {"agent_id": agent_id, "chat_id": chat_id}, {"$max": {"delivered_seq": seq}}
        )

    async def mark_delivered_many(self, marks: dict[tuple[str, str], int]) -> None:
        """``mark_delivered`` for many (agent, chat) pairs, in few commands."""
        await self._database.bulk_write(
            self._memberships,
            [
                UpdateOne(
                    {"agent_id": agent_id, "chat_id": chat_id},
                    {"$max": {"delivered_seq": seq}},
                )
                for (agent_id, chat_id), seq in sorted(marks.items())
            ],
        )

    async def watermarks(self, chat_id: str) -> dict[str, tuple[int, int]]:
        """Per member: (delivered_seq, read_seq)."""
        cursor = self._memberships.find({"chat_id": chat_id})
        return {
            doc["agent_id"]: (doc.get("delivered_seq", 0), doc.get("read_seq", 0))
            async for doc in cursor
        }


class FloorRepository:
    """``speaker_queues``: the floor of each chat with floor control, as last stored."""

    def __init__(self, database: Database) -> None:
        self._floors = database.db["speaker_queues"]

    async def put(self, chat_id: str, floor: FloorState) -> None:
        queue = sorted(floor.queue, key=lambda r: r.order)
        await self._floors.replace_one(
            {"_id": chat_id},
            {
                "_id": chat_id,
                "chat_id": chat_id,
                "policy": floor.settings.speaker_policy,
                "current_speaker": floor.current_speaker,
                "turn_ends_at": floor.turn_ends_at,
                "queue": [r.model_dump(mode="python") for r in queue],
                "round": floor.round,
                "last_updated": datetime.now(UTC),
            },
            upsert=True,
        )

    async def get(self, chat_id: str) -> dict | None:
        return await self._floors.find_one({"_id": chat_id})


class MessageRepository:
    """``messages``: ``_id`` is the deterministic message id, so a retried batch rewrites
    the same documents and stores nothing twice."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._messages = database.db["messages"]
        self._cipher = database.cipher

    def _to_doc(self, message: Message) -> dict:
        """The stored form: the content sealed with AES-GCM under the current key, bound
        to the message id; the key id is kept with it (``content_sealed.kid``)."""
        doc = message.model_dump(mode="python", by_alias=True, exclude={"content"})
        doc["_id"] = message.message_id
        doc["content_sealed"] = self._cipher.seal(message.content, message.message_id)
        return doc

    def _from_doc(self, doc: dict) -> Message:
        doc = dict(doc)
        doc["content"] = self._cipher.open(doc.pop("content_sealed"), doc["_id"])
        return Message.model_validate(doc)

    async def store(self, messages: list[Message]) -> int:
        """Insert the batch; a message already stored (a retried batch) is left as it is.

        Messages never change, so an insert that meets its own ``_id`` is a success.
        (FerretDB here is the local stand-in, run with --telemetry=disable.)
        Inserts, not replace-upserts: FerretDB v1 takes minutes for a bulk of
        replace-upserts that meet existing documents, and milliseconds for this.
        """
        docs = [self._to_doc(m) for m in messages]
        try:
            result = await self._messages.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]
            if others:
                raise
            return exc.details.get("nInserted", 0)
        return len(result.inserted_ids)

    async def set_contexts(self, chat_id: str, contexts: dict[int, MessageContext]) -> int:
        """Write what the processing step read onto stored messages (one bulk request; a
        rewrite with the same reading changes nothing)."""
        if not contexts:
            return 0
        return await self._database.bulk_write(
            self._messages,
            [
                UpdateOne(
                    {"_id": message_id_for(chat_id, seq)},
                    {"$set": {"langchain_context": context.model_dump(mode="python")}},
                )
                for seq, context in sorted(contexts.items())
            ],
        )

    async def page(self, chat_id: str, after_seq: int, limit: int) -> list[Message]:
        docs = (
            await self._messages.find({"chat_id": chat_id, "seq": {"$gt": after_seq}})
            .sort("seq", 1)
            .limit(limit)
            .to_list()
        )
        return [self._from_doc(doc) for doc in docs]

    async def page_before(self, chat_id: str, before_seq: int, limit: int) -> list[Message]:
        """The ``limit`` messages just before ``before_seq``, in seq order."""
        docs = (
            await self._messages.find({"chat_id": chat_id, "seq": {"$lt": before_seq}})
            .sort("seq", -1)
            .limit(limit)
            .to_list()
        )
        return [self._from_doc(doc) for doc in reversed(docs)]

    async def count(self, chat_id: str) -> int:
        return await self._messages.count_documents({"chat_id": chat_id})
