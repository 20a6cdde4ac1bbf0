"""Manifests and agent credentials in MongoDB."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from models.agents import FOCUS_PREFIX, AgentManifest, escape_search
from persistence.client import Database, find_by_ids, insert_once


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
        self._database = database
        self._agents = database.db["agents"]
        self._history = database.db["manifest_history"]

    async def upsert(self, manifest: AgentManifest) -> bool:
        """Store a manifest unless a newer version is already stored (a retried, stale write).
        A version that changes the public page (not only presence or focus) is also kept
        in ``manifest_history``, with the fields it changed."""
        doc = manifest.model_dump(mode="python")
        doc["_id"] = manifest.agent_id
        if manifest.version == 0 and await insert_once(self._agents, doc):
            await self._remember(doc, first=True)
            return True  # the first manifest: an insert finds no stored one by index
        try:
            await self._agents.replace_one(
                {"_id": manifest.agent_id, "version": {"$lt": manifest.version}}, doc, upsert=True
            )
        except DuplicateKeyError:
            return False  # the stored version is as new or newer
        await self._remember(doc)
        return True

    async def _remember(self, doc: dict, *, first: bool = False) -> None:
        """One history entry when the page changed. The page before is the one this
        process stored last; only the first write of an agent in a process reads it from
        the history, so the steady state adds no keyed read to a manifest's write. The
        agent's ``first`` manifest, just inserted, has no page before it: no read."""
        agent_id = doc["agent_id"]
        page = {field: doc.get(field) for field in PAGE_FIELDS}
        pages = self._database.pages
        if first:
            before = None
        elif agent_id in pages:
            before = pages[agent_id]
            pages.move_to_end(agent_id)
        else:
            last = await self._history.find_one({"agent_id": agent_id}, sort=[("version", -1)])
            before = last["page"] if last else None
        changed = page_changes(before, page)
        if changed:
            entry = {
                "_id": f"{agent_id}:{doc['version']:012d}",
                "agent_id": agent_id,
                "version": doc["version"],
                "at": doc["last_updated"],
                "changed": changed,
                "page": page,
            }
            await insert_once(self._history, entry)
        pages[agent_id] = page
        while len(pages) > PAGES_KEPT:
            pages.popitem(last=False)

    async def history(self, agent_id: str, limit: int = 50) -> list[dict]:
        """The last page changes of an agent, newest first (a console read, off hot paths)."""
        cursor = self._history.find({"agent_id": agent_id}).sort("version", -1).limit(limit)
        return [doc async for doc in cursor]

    async def get(self, agent_id: str) -> AgentManifest | None:
        doc = await self._agents.find_one({"_id": agent_id})
        return AgentManifest.model_validate(doc) if doc else None

    async def names(self, agent_ids: list[str]) -> dict[str, str]:
        """Display names by agent id (one query for a batch)."""
        docs = await find_by_ids(self._agents, agent_ids, {"public_profile.name": 1})
        return {doc["_id"]: doc.get("public_profile", {}).get("name") for doc in docs}

    async def exists(self, agent_id: str) -> bool:
        return await self._agents.count_documents({"_id": agent_id}, limit=1) > 0

    async def existing(self, agent_ids: list[str]) -> set[str]:
        """Which of these ids are taken (one query for a batch)."""
        return {doc["_id"] for doc in await find_by_ids(self._agents, agent_ids, {"_id": 1})}

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


PAGE_FIELDS = (
    "status",
    "current_activities",
    "room_participation",
    "available_resources",
    "public_profile",
    "hosted",
)
"""What a manifest's history follows: the public page, not presence, focus or times."""

PAGES_KEPT = 20_000
"""How many agents' last pages a process keeps (the least recently written go first)."""


def page_changes(before: dict | None, after: dict) -> list[str]:
    """The page fields ``after`` changes from ``before`` (all of them for a first page);
    the focus line of ``current_activities`` moves too often to be history."""

    def page(doc: dict) -> dict:
        values = {field: doc.get(field) for field in PAGE_FIELDS}
        values["current_activities"] = [
            a for a in values["current_activities"] or [] if not a.startswith(FOCUS_PREFIX)
        ]
        return values

    if before is None:
        return list(PAGE_FIELDS)
    old, new = page(before), page(after)
    return [field for field in PAGE_FIELDS if old[field] != new[field]]


class CredentialRepository:
    """``credentials``: one document per issued token id (the JWT's ``jti``), never the
    token itself. A token is accepted only while its id is here and not revoked."""

    def __init__(self, database: Database) -> None:
        self._credentials = database.db["credentials"]

    async def put(self, token_id: str, subject: str, role: str, expires_at: datetime) -> None:
        """Record an issued token id (idempotent: a retried write changes nothing)."""
        doc = {"_id": token_id, "subject": subject, "role": role, "expires_at": expires_at}
        await insert_once(self._credentials, doc | {"revoked_at": None})

    async def revoke_subject(
        self, subject: str, role: str, at: datetime, *, keep: str | None = None
    ) -> int:
        """Revoke every live token of a subject, except ``keep`` (a rotation's new one)."""
        query: dict[str, Any] = {"subject": subject, "role": role, "revoked_at": None}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        result = await self._credentials.update_many(query, {"$set": {"revoked_at": at}})
        return result.modified_count

    async def is_live(self, token_id: str, subject: str, role: str) -> bool:
        doc = await self._credentials.find_one({"_id": token_id})
        return (
            doc is not None
            and doc.get("revoked_at") is None
            and doc.get("subject") == subject
            and doc.get("role") == role
        )


class StreamTicketRepository:
    """``stream_tickets``: single-use tickets that open one stream within seconds, for
    browsers that cannot set a header on a WebSocket. Only a ticket's SHA-256 is stored;
    redeeming deletes it, so a ticket opens one connection in whichever API process."""

    def __init__(self, database: Database) -> None:
        self._tickets = database.db["stream_tickets"]

    @staticmethod
    def _key(ticket: str) -> str:
        return hashlib.sha256(ticket.encode()).hexdigest()

    async def put(
        self,
        ticket: str,
        agent_id: str,
        token_id: str,
        expires_at: datetime,
        extra: dict | None = None,
    ) -> None:
        """``extra``: what else the stream needs to know (an observer's role and scope)."""
        await self._tickets.delete_many({"expires_at": {"$lt": datetime.now(UTC)}})
        doc = {"agent_id": agent_id, "token_id": token_id, "expires_at": expires_at}
        await self._tickets.insert_one((extra or {}) | doc | {"_id": self._key(ticket)})

    async def redeem(self, ticket: str) -> dict | None:
        """The ticket's record, removed (None: unknown, used or expired)."""
        doc = await self._tickets.find_one_and_delete({"_id": self._key(ticket)})
        if doc is None or doc["expires_at"] <= datetime.now(UTC):
            return None
        return doc


class OperatorRepository:
    """``operators``: people or programs that run agents.

    Operators are registered by an admin through the API (no workflow: they have no
    life to orchestrate); their tokens are JWTs recorded in ``credentials``.
    """

    def __init__(self, database: Database) -> None:
        self._operators = database.db["operators"]

    async def create(self, operator_id: str, name: str, at: datetime) -> bool:
        try:
            await self._operators.insert_one({"_id": operator_id, "name": name, "created_at": at})
        except DuplicateKeyError:
            return False
        return True


class AttentionRepository:
    """``agent_attention_states`` (the attention view) and ``dialogue_contexts``."""

    def __init__(self, database: Database) -> None:
        self._states = database.db["agent_attention_states"]
        self._contexts = database.db["dialogue_contexts"]
        self._cipher = database.cipher

    async def put_state(self, agent_id: str, view: dict) -> None:
        await self._states.replace_one({"_id": agent_id}, {"_id": agent_id, **view}, upsert=True)

    async def get_state(self, agent_id: str) -> dict | None:
        return await self._states.find_one({"_id": agent_id})

    async def get_context(self, agent_id: str, chat_id: str) -> dict:
        """The saved context of one dialogue; its summary and lines are message content,
        so they are stored sealed like messages."""
        key = f"{agent_id}|{chat_id}"
        doc = await self._contexts.find_one({"_id": key})
        if doc is None:
            return {"summary": "", "history": [], "last_seq": 0}
        opened = json.loads(self._cipher.open(doc["sealed"], key))
        return {
            "summary": opened["summary"],
            "history": opened["history"],
            "last_seq": doc["last_seq"],
        }

    async def put_context(
        self, agent_id: str, chat_id: str, summary: str, history: list[dict], last_seq: int
    ) -> None:
        """Save a dialogue's context unless one through a later seq is saved (a late
        write from another worker never takes a context back)."""
        key = f"{agent_id}|{chat_id}"
        sealed = self._cipher.seal(json.dumps({"summary": summary, "history": history}), key)
        with contextlib.suppress(DuplicateKeyError):  # one through a later seq is saved
            await self._contexts.replace_one(
                {"_id": key, "last_seq": {"$lte": last_seq}},
                {
                    "_id": key,
                    "agent_id": agent_id,
                    "chat_id": chat_id,
                    "sealed": sealed,
                    "last_seq": last_seq,
                },
                upsert=True,
            )
