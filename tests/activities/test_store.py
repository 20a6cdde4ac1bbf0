"""The message batch activity: analysis is bounded and optional; storing is idempotent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from models.chats import Message
from models.workflow_io import StoreMessagesInput
from persistence import Database


def batch(chat_id: str, n: int) -> list[Message]:
    return [
        Message(
            message_id=f"{chat_id}:{i:012d}",
            chat_id=chat_id,
            seq=i,
            from_="ann",
            timestamp=datetime.now(UTC),
            message_type="text",
            content=f"bob, question {i}?",
            is_private=False,
        )
        for i in range(1, n + 1)
    ]


class Analyser:
    """A stand-in for the processing step's runnable: down, or slow."""

    def __init__(self, delay: float = 0.0, broken: bool = False) -> None:
        self.delay, self.broken = delay, broken

    async def abatch(self, items):
        await asyncio.sleep(self.delay)
        if self.broken:
            raise RuntimeError("the analyser is down")
        return [{} for _ in items]


async def test_a_failing_analysis_never_holds_a_message_back(database: Database):
    data = StoreMessagesInput(messages=batch("c1", 3), members=["ann", "bob"])
    activities = StoreActivities(database, Analyser(broken=True))
    result = await ActivityEnvironment().run(activities.store_messages, data)
    assert result.stored == 3 and result.contexts == {}
    docs = await database.db["messages"].find({"chat_id": "c1"}).to_list(None)
    assert len(docs) == 3 and all(d["langchain_context"] is None for d in docs)


async def test_a_slow_analysis_is_cut_off_by_its_time_limit(database: Database):
    data = StoreMessagesInput(
        messages=batch("c2", 2), members=["ann", "bob"], analysis_timeout_seconds=0.2
    )
    activities = StoreActivities(database, Analyser(delay=5))
    result = await ActivityEnvironment().run(activities.store_messages, data)
    assert result.stored == 2 and result.contexts == {}


async def test_a_retried_batch_stores_nothing_twice(database: Database):
    data = StoreMessagesInput(messages=batch("c3", 50), members=["ann", "bob"])
    activities = StoreActivities(database)
    first = await ActivityEnvironment().run(activities.store_messages, data)
    assert first.contexts[1].mentions == ["bob"] and first.contexts[1].intent == "question"
    again = await ActivityEnvironment().run(activities.store_messages, data)
    assert again.stored == 0  # every message met its own _id
    assert await database.db["messages"].count_documents({"chat_id": "c3"}) == 50
