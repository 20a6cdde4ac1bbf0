"""``tasks`` (the projection TaskWorkflow writes), ``reviews`` and ``reputations``."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from models.market import FINAL, Reputation, Review, Task, reputation_score
from persistence.client import Database, find_by_ids


class TaskRepository:
    def __init__(self, database: Database) -> None:
        self._tasks = database.db["tasks"]

    async def upsert(self, task: Task) -> bool:
        """Store the task unless a newer version is there (a retried, stale write)."""
        doc = task.model_dump(mode="python") | {"_id": task.task_id}
        try:
            await self._tasks.replace_one(
                {"_id": task.task_id, "version": {"$lt": task.version}}, doc, upsert=True
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, task_id: str) -> Task | None:
        doc = await self._tasks.find_one({"_id": task_id})
        return Task.model_validate(doc) if doc else None

    async def search(self, status: str | None, skill: str | None, limit: int) -> list[Task]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if skill:
            query["skills_required"] = skill
        docs = await self._tasks.find(query).sort("created_at", -1).limit(limit).to_list()
        return [Task.model_validate(d) for d in docs]

    async def open_for(self, agent_id: str) -> list[tuple[str, str, str]]:
        """(task id, the agent's part, status) of every unfinished task the agent posted,
        is assigned to, or bids on while it is open."""
        query = {
            "status": {"$nin": list(FINAL)},
            "$or": [{"poster": agent_id}, {"assignee": agent_id}, {"bids.agent_id": agent_id}],
        }
        found = []
        async for doc in self._tasks.find(query, {"poster": 1, "assignee": 1, "status": 1}):
            if doc["poster"] == agent_id:
                part = "poster"
            elif doc.get("assignee") == agent_id:
                part = "assignee"
            elif doc["status"] == "open":
                part = "bidder"
            else:
                continue  # a losing bid on a task now assigned to another: nothing open
            found.append((doc["_id"], part, doc["status"]))
        return sorted(found)

    async def counts_for(self, agent_id: str) -> tuple[int, int]:
        """(assigned, settled) tasks with this agent as the assignee, finished or not."""
        assigned = await self._tasks.count_documents({"assignee": agent_id})
        settled = await self._tasks.count_documents({"assignee": agent_id, "status": "settled"})
        return assigned, settled


class ReviewRepository:
    def __init__(self, database: Database) -> None:
        self._reviews = database.db["reviews"]
        self._reputations = database.db["reputations"]
        self._tasks = TaskRepository(database)

    async def add(self, review: Review) -> None:
        doc = review.model_dump(mode="python") | {"_id": f"{review.task_id}|{review.reviewer}"}
        with contextlib.suppress(DuplicateKeyError):  # a retried write: the first stands
            await self._reviews.insert_one(doc)

    async def recompute(self, agent_id: str) -> Reputation:
        now = datetime.now(UTC)
        ratings = [
            (d["rating"], (now - d["at"]).total_seconds() / 86400)
            async for d in self._reviews.find({"subject": agent_id})
        ]
        assigned, settled = await self._tasks.counts_for(agent_id)
        score, rate = reputation_score(ratings, assigned, settled)
        reputation = Reputation(
            agent_id=agent_id, score=score, reviews=len(ratings), completion_rate=rate
        )
        await self._reputations.replace_one(
            {"_id": agent_id}, reputation.model_dump() | {"_id": agent_id}, upsert=True
        )
        return reputation

    async def of_subject(self, agent_id: str, limit: int = 200) -> list[Review]:
        """The reviews an agent received, oldest first."""
        cursor = self._reviews.find({"subject": agent_id}).sort("at", 1).limit(limit)
        return [Review.model_validate(doc) async for doc in cursor]

    async def reputation(self, agent_id: str) -> Reputation | None:
        doc = await self._reputations.find_one({"_id": agent_id})
        return Reputation.model_validate(doc) if doc else None

    async def reputations(self, agent_ids: list[str]) -> dict[str, float]:
        return {d["_id"]: d["score"] for d in await find_by_ids(self._reputations, agent_ids)}
