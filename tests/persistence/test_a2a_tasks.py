"""An A2A task's record is written from two coroutines: the SDK's consumer stores the
task, and the executor stores what it waits for. Either may come first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from persistence import Database
from persistence.a2a import A2ATaskRepository

WORKING = {"id": "t", "status": {"state": "TASK_STATE_WORKING"}}


def _until() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=30)


async def test_a_wait_stored_before_its_task_leaves_the_task_to_its_caller(database: Database):
    tasks = A2ATaskRepository(database)
    await tasks.ask("t-first-wait", 7, "host", _until(), "api-1", 5.0)
    await tasks.put("ada/host", "t-first-wait", "c1", WORKING)

    assert await tasks.get("ada/host", "t-first-wait") == WORKING
    assert (await tasks.asked("t-first-wait"))["seq"] == 7
    assert await tasks.owned("ada/host") == [WORKING]


async def test_a_task_and_its_wait_stored_side_by_side_both_stand(database: Database):
    tasks = A2ATaskRepository(database)
    ids = [f"t-race-{i}" for i in range(20)]
    await asyncio.gather(
        *(tasks.put("ada/host", i, "c2", WORKING | {"id": i}) for i in ids),
        *(tasks.ask(i, 3, "host", _until(), "api-1", 5.0) for i in ids),
    )
    for i in ids:
        assert await tasks.get("ada/host", i) == WORKING | {"id": i}
        assert (await tasks.asked(i))["seq"] == 3


async def test_another_callers_task_of_the_same_id_is_refused_and_kept(database: Database):
    tasks = A2ATaskRepository(database)
    await tasks.put("ada/host", "t-taken", "c3", WORKING)
    with pytest.raises(DuplicateKeyError):
        await tasks.put("eve/host", "t-taken", "c3", WORKING | {"id": "eve's"})

    assert await tasks.get("ada/host", "t-taken") == WORKING
    assert await tasks.get("eve/host", "t-taken") is None
