"""``a2a_tasks`` and ``a2a_push_configs``: the A2A tasks callers opened with Agora's
agents, and where their updates are pushed.

A task is kept as the A2A JSON form of its protobuf (the API's A2A door converts), with
the fields a caller filters on beside it. Every read names the owner (the caller and
the agent it spoke to), so one caller never reads another's task. These are not on the
message path: a task is written a few times in its life.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from persistence.client import Database, upsert_once_raced


class A2ATaskRepository:
    def __init__(self, database: Database) -> None:
        self._tasks = database.db["a2a_tasks"]
        self._pushes = database.db["a2a_push_configs"]

    async def put(self, owner: str, task_id: str, context_id: str, task: dict[str, Any]) -> None:
        """Store ``owner``'s task. The wait (``ask``) may be stored first, by the executor,
        before the SDK's consumer stores the submitted task: a document with this id and
        no owner yet is the same task's. One with another owner is refused (E11000)."""
        working = task.get("status", {}).get("state") == "TASK_STATE_WORKING"
        doc = {
            "owner": owner,
            "context_id": context_id,
            "task": task,
            "working": working,
            "at": datetime.now(UTC),
        }
        mine = {"_id": task_id, "owner": {"$in": [owner, None]}}
        await upsert_once_raced(self._tasks, mine, {"$set": doc})

    async def get(self, owner: str, task_id: str) -> dict[str, Any] | None:
        doc = await self._tasks.find_one({"_id": task_id, "owner": owner})
        return doc["task"] if doc else None

    async def task(self, task_id: str) -> dict[str, Any] | None:
        """A task by its id alone (for a caller already let in by ``get``)."""
        doc = await self._tasks.find_one({"_id": task_id}, {"task": 1})
        return doc["task"] if doc else None

    async def owned(self, owner: str, context_id: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"owner": owner}
        if context_id:
            query["context_id"] = context_id
        return [doc["task"] async for doc in self._tasks.find(query)]

    async def delete(self, owner: str, task_id: str) -> None:
        await self._tasks.delete_one({"_id": task_id, "owner": owner})

    async def ask(
        self, task_id: str, seq: int, agent_id: str, until: datetime, holder: str, lease: float
    ) -> None:
        """What a working task waits for (the agent's first message after ``seq``, until
        ``until``), and which API process waits for it (``holder``, for ``lease`` seconds):
        any process can finish the task from this when its holder is gone."""
        now = datetime.now(UTC)
        asked = {"seq": seq, "agent_id": agent_id, "until": until}
        lease_doc = {"holder": holder, "until": now + timedelta(seconds=lease)}
        waits = {"$set": {"asked": asked, "lease": lease_doc}}
        await upsert_once_raced(self._tasks, {"_id": task_id}, waits)

    async def asked(self, task_id: str) -> dict[str, Any] | None:
        doc = await self._tasks.find_one({"_id": task_id}, {"asked": 1})
        return doc.get("asked") if doc else None

    async def claim(self, task_id: str, holder: str, lease: float) -> bool:
        """Hold the task's wait for ``lease`` seconds: True when it was free (its holder's
        lease ran out) or already ``holder``'s. (On FerretDB v1, without transactions, two
        processes may both win a lapsed lease at the same instant; both then finish the
        task with the same reply.)"""
        now = datetime.now(UTC)
        result = await self._tasks.update_one(
            {
                "_id": task_id,
                "$or": [{"lease.until": {"$lt": now}}, {"lease.holder": holder}],
            },
            {"$set": {"lease": {"holder": holder, "until": now + timedelta(seconds=lease)}}},
        )
        return result.matched_count == 1

    async def lapsed(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """(owner, task) of the working tasks whose waiting process let its lease run out."""
        query = {"working": True, "lease.until": {"$lt": now}}
        return [(doc["owner"], doc["task"]) async for doc in self._tasks.find(query)]

    async def put_push(self, owner: str, task_id: str, config_id: str, config: dict) -> None:
        doc = {"owner": owner, "task_id": task_id, "config": config}
        await self._pushes.update_one({"_id": f"{task_id}/{config_id}"}, {"$set": doc}, upsert=True)

    async def pushes(self, task_id: str, owner: str | None = None) -> list[dict[str, Any]]:
        """A task's push configs (only ``owner``'s when given: dispatch reads them all)."""
        query: dict[str, Any] = {"task_id": task_id}
        if owner is not None:
            query["owner"] = owner
        return [doc["config"] async for doc in self._pushes.find(query)]

    async def delete_push(self, owner: str, task_id: str, config_id: str | None) -> None:
        query: dict[str, Any] = {"task_id": task_id, "owner": owner}
        if config_id is not None:
            query["_id"] = f"{task_id}/{config_id}"
        await self._pushes.delete_many(query)
