"""``accounts``, ``transactions`` (the ledger) and the skills catalogue in MongoDB.

Balances are never stored: an account's balance is what the ledger says (credits minus
debits), so it cannot drift from it. Each entry's ``_id`` is its idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from models.market import LedgerEntry, Skill
from persistence.client import Database, insert_once


class LedgerRepository:
    def __init__(self, database: Database) -> None:
        self._accounts = database.db["accounts"]
        self._entries = database.db["transactions"]

    async def open_account(self, agent_id: str, at: datetime) -> None:
        await insert_once(self._accounts, {"_id": agent_id, "created_at": at})

    async def has_account(self, agent_id: str) -> bool:
        return await self._accounts.count_documents({"_id": agent_id}, limit=1) > 0

    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        """Store the entry once; a second write with the same id returns the first."""
        doc = entry.model_dump(mode="python", exclude={"entry_id"}) | {"_id": entry.entry_id}
        try:
            await self._entries.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(entry.entry_id)
            assert existing is not None
            return existing
        return entry

    async def get(self, entry_id: str) -> LedgerEntry | None:
        doc = await self._entries.find_one({"_id": entry_id})
        return LedgerEntry.model_validate(doc | {"entry_id": doc["_id"]}) if doc else None

    async def _sum(self, match: dict[str, Any]) -> int:
        rows = await (
            await self._entries.aggregate(
                [{"$match": match}, {"$group": {"_id": None, "total": {"$sum": "$amount"}}}]
            )
        ).to_list()
        return int(rows[0]["total"]) if rows else 0

    async def balance(self, account: str) -> int:
        return await self._sum({"credit": account}) - await self._sum({"debit": account})

    async def page(
        self, account: str, before: str | None, limit: int
    ) -> tuple[list[LedgerEntry], str | None]:
        """Newest first by time (ids break ties)."""
        query: dict[str, Any] = {"$or": [{"debit": account}, {"credit": account}]}
        docs = await self._entries.find(query).sort([("at", -1), ("_id", -1)]).to_list()
        entries = [LedgerEntry.model_validate(d | {"entry_id": d["_id"]}) for d in docs]
        if before is not None:
            ids = [e.entry_id for e in entries]
            entries = entries[ids.index(before) + 1 :] if before in ids else []
        page = entries[:limit]
        return page, (page[-1].entry_id if len(entries) > limit else None)

    async def of_task(self, task_id: str) -> list[LedgerEntry]:
        """A task's movements (escrow, release, refund), oldest first."""
        cursor = self._entries.find({"task_id": task_id}).sort([("at", 1), ("_id", 1)])
        docs = await cursor.to_list()
        return [LedgerEntry.model_validate(d | {"entry_id": d["_id"]}) for d in docs]

    async def balances(self) -> dict[str, int]:
        """Every account's balance from the whole ledger (for checks and drills)."""
        totals: dict[str, int] = {}
        async for doc in self._entries.find({}, {"debit": 1, "credit": 1, "amount": 1}):
            totals[doc["debit"]] = totals.get(doc["debit"], 0) - doc["amount"]
            totals[doc["credit"]] = totals.get(doc["credit"], 0) + doc["amount"]
        return totals


DEFAULT_SKILLS = (
    Skill(name="data_analysis", description="Reading data and saying what it shows"),
    Skill(name="statistics", parent="data_analysis", description="Estimates, tests, fits"),
    Skill(name="translation", description="From one language into another"),
    Skill(name="writing", description="Prose for a purpose"),
    Skill(name="poetry", parent="writing", description="Verse, short or long"),
    Skill(name="science", description="Questions answered by experiment"),
    Skill(name="lab_work", parent="science", description="Running and reporting experiments"),
    Skill(name="programming", description="Making programs"),
    Skill(name="algorithms", parent="programming", description="Finding a way, and a fast one"),
    Skill(name="python", parent="programming", description="Programs in Python"),
    Skill(name="conversation", description="Listening and answering"),
)
"""The catalogue a new platform starts with: the seed's examples and the demo's skills."""


class SkillRepository:
    def __init__(self, database: Database) -> None:
        self._skills = database.db["skills"]
        self._agent_skills = database.db["agent_skills"]

    async def ensure_defaults(self) -> None:
        """Put the default tree in (a skill already there, or removed by nobody, stays)."""
        for skill in DEFAULT_SKILLS:
            await insert_once(self._skills, skill.model_dump() | {"_id": skill.name})

    async def create(self, skill: Skill) -> bool:
        try:
            await self._skills.insert_one(skill.model_dump() | {"_id": skill.name})
        except DuplicateKeyError:
            return False
        return True

    async def all(self) -> list[Skill]:
        return [Skill.model_validate(d) async for d in self._skills.find({}).sort("_id", 1)]

    async def link(self, agent_id: str, names: list[str]) -> None:
        """Make the agent's skills exactly the catalogue skills among ``names`` (level 1
        unless set otherwise)."""
        known = {d["_id"] async for d in self._skills.find({"_id": {"$in": names}}, {"_id": 1})}
        linked = await self.of_agent(agent_id)
        if linked == known:  # the common case: a heartbeat or a status change
            return
        await self._agent_skills.delete_many({"agent_id": agent_id, "skill": {"$nin": list(known)}})
        for name in sorted(known - linked):
            await self._agent_skills.update_one(
                {"_id": f"{agent_id}|{name}"},
                {"$setOnInsert": {"agent_id": agent_id, "skill": name, "level": 1}},
                upsert=True,
            )

    async def of_agent(self, agent_id: str) -> set[str]:
        return {d["skill"] async for d in self._agent_skills.find({"agent_id": agent_id})}

    async def agents_with(self, names: set[str]) -> dict[str, set[str]]:
        held: dict[str, set[str]] = {}
        async for doc in self._agent_skills.find({"skill": {"$in": sorted(names)}}):
            held.setdefault(doc["agent_id"], set()).add(doc["skill"])
        return held
