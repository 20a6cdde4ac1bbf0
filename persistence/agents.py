"""Manifests and agent credentials in MongoDB."""

from __future__ import annotations

import base64
from typing import Any

from pymongo.errors import DuplicateKeyError

from models.agents import AgentManifest, escape_search
from persistence.client import Database


def _encode_cursor(agent_id: str) -> str:
    return base64.urlsafe_b64encode(agent_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The agent id a cursor points after; ``ValueError`` for a cursor we did not issue."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        agent_id = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise ValueError("not a cursor this API issued") from exc
    if not agent_id:
        raise ValueError("not a cursor this API issued")
    return agent_id


class AgentRepository:
    """The ``agents`` collection: written by AgentWorkflow's activities, read by the API."""

    def __init__(self, database: Database) -> None:
        self._agents = database.db["agents"]

    async def upsert(self, manifest: AgentManifest) -> bool:
        """Store a manifest unless a newer version is already stored (a retried, stale write)."""
        doc = manifest.model_dump(mode="python")
        doc["_id"] = manifest.agent_id
        try:
            await self._agents.replace_one(
                {"_id": manifest.agent_id, "version": {"$lt": manifest.version}}, doc, upsert=True
            )
        except DuplicateKeyError:
            return False  # the stored version is as new or newer
        return True

    async def get(self, agent_id: str) -> AgentManifest | None:
        doc = await self._agents.find_one({"_id": agent_id})
        return AgentManifest.model_validate(doc) if doc else None

    async def exists(self, agent_id: str) -> bool:
        return await self._agents.count_documents({"_id": agent_id}, limit=1) > 0

    async def search(
        self,
        *,
        status: str | None = None,
        resource: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[AgentManifest], str | None]:
        """A page of manifests in id order, and the cursor of the next page if there is one."""
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if resource:
            query["available_resources.name"] = resource
        if q:
            query["public_profile.name"] = {"$regex": escape_search(q), "$options": "i"}
        if after:
            query["_id"] = {"$gt": after}
        docs = await self._agents.find(query).sort("_id", 1).limit(limit + 1).to_list()
        items = [AgentManifest.model_validate(doc) for doc in docs[:limit]]
        next_cursor = _encode_cursor(items[-1].agent_id) if len(docs) > limit else None
        return items, next_cursor


class CredentialRepository:
    """``agent_credentials``: a token's keyed hash and whom it belongs to; never the token."""

    def __init__(self, database: Database) -> None:
        self._credentials = database.db["agent_credentials"]

    async def put(self, agent_id: str, token_hash: str, *, revoked: bool) -> None:
        await self._credentials.update_one(
            {"_id": token_hash},
            {"$set": {"agent_id": agent_id, "revoked": revoked}},
            upsert=True,
        )

    async def agent_for(self, token_hash: str) -> str | None:
        """The agent a live token belongs to, or None for an unknown or revoked token."""
        doc = await self._credentials.find_one({"_id": token_hash})
        if doc is None or doc.get("revoked"):
            return None
        return doc["agent_id"]


class OperatorRepository:
    """``operators`` and their credentials: people or programs that run agents.

    Operators are registered by an admin through the API (no workflow: they have no
    life to orchestrate); their token, like an agent's, is stored only as a keyed hash.
    """

    def __init__(self, database: Database) -> None:
        self._operators = database.db["operators"]
        self._credentials = database.db["operator_credentials"]

    async def create(self, operator_id: str, name: str, token_hash: str, at) -> bool:
        try:
            await self._operators.insert_one({"_id": operator_id, "name": name, "created_at": at})
        except DuplicateKeyError:
            return False
        await self._credentials.insert_one({"_id": token_hash, "operator_id": operator_id})
        return True

    async def operator_for(self, token_hash: str) -> str | None:
        doc = await self._credentials.find_one({"_id": token_hash})
        return doc["operator_id"] if doc else None


class AttentionRepository:
    """``agent_attention_states`` (the attention view) and ``dialogue_contexts``."""

    def __init__(self, database: Database) -> None:
        self._states = database.db["agent_attention_states"]
        self._contexts = database.db["dialogue_contexts"]

    async def put_state(self, agent_id: str, view: dict) -> None:
        await self._states.replace_one({"_id": agent_id}, {"_id": agent_id, **view}, upsert=True)

    async def get_state(self, agent_id: str) -> dict | None:
        return await self._states.find_one({"_id": agent_id})

    async def get_context(self, agent_id: str, chat_id: str) -> dict:
        doc = await self._contexts.find_one({"_id": f"{agent_id}|{chat_id}"})
        return doc or {"summary": "", "history": [], "last_seq": 0}

    async def put_context(
        self, agent_id: str, chat_id: str, summary: str, history: list[dict], last_seq: int
    ) -> None:
        await self._contexts.replace_one(
            {"_id": f"{agent_id}|{chat_id}"},
            {"_id": f"{agent_id}|{chat_id}", "agent_id": agent_id, "chat_id": chat_id,
             "summary": summary, "history": history, "last_seq": last_seq},
            upsert=True,
        )  # fmt: skip
