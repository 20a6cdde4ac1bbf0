"""Long bulk writes go in short commands, so FerretDB v1 never waits on its own pool.

FerretDB v1 holds a PostgreSQL connection for every statement of an update command
until the command ends; a bulk longer than its pool (240 connections here) waited for
ever, and every other client of the store with it. A group of 300 members and a burst
of 300 analysed messages are such bulks.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.chats import ChatPublic, Member, Message, MessageContext, Role
from persistence import ChatRepository, Database, MessageRepository
from persistence.client import chunks
from tests.activities.test_store import batch

LONGER_THAN_THE_POOL = 300
HANG_GUARD_SECONDS = 120  # not a speed figure: a wedged store never answers at all


@given(st.lists(st.integers(), max_size=60), st.integers(min_value=1, max_value=10))
def test_chunks_keep_every_item_in_order_within_the_size(items, size):
    cut = chunks(items, size)
    assert [x for chunk in cut for x in chunk] == items
    assert all(1 <= len(chunk) <= size for chunk in cut)


async def test_a_group_longer_than_the_pool_is_stored_and_the_store_still_answers(
    database: Database,
):
    now = datetime.now(UTC)
    members = [
        Member(agent_id=f"m{i}", role=Role.OWNER if i == 0 else Role.MEMBER, joined_at=now)
        for i in range(LONGER_THAN_THE_POOL)
    ]
    chat = ChatPublic(
        chat_id="g-big",
        type="group",
        join_rule="invite",
        created_by="m0",
        created_at=now,
        members=members,
        version=1,
    )
    chats = ChatRepository(database)
    assert await asyncio.wait_for(chats.upsert(chat), HANG_GUARD_SECONDS)
    marks = await asyncio.wait_for(chats.watermarks("g-big"), HANG_GUARD_SECONDS)
    assert len(marks) == LONGER_THAN_THE_POOL
    await asyncio.wait_for(
        chats.mark_read("g-big", {m.agent_id: 5 for m in members}), HANG_GUARD_SECONDS
    )
    marks = await chats.watermarks("g-big")
    assert set(marks.values()) == {(5, 5)}
    await asyncio.wait_for(database.ping(), 10)


async def test_a_burst_of_analysed_messages_longer_than_the_pool_gets_every_context(
    database: Database,
):
    messages = MessageRepository(database)
    stored: list[Message] = batch("c-burst", LONGER_THAN_THE_POOL)
    assert await messages.store(stored) == LONGER_THAN_THE_POOL
    contexts = {
        m.seq: MessageContext(mentions=["bob"], importance=0.5, intent="question") for m in stored
    }
    changed = await asyncio.wait_for(messages.set_contexts("c-burst", contexts), HANG_GUARD_SECONDS)
    assert changed == LONGER_THAN_THE_POOL
    page = await messages.page("c-burst", 0, LONGER_THAN_THE_POOL)
    assert [m.langchain_context for m in page] == [contexts[m.seq] for m in page]
    await asyncio.wait_for(database.ping(), 10)


async def test_reads_of_many_ids_find_each_stored_one_and_only_those(database: Database):
    """A batch of ids is read one keyed find each (FerretDB v1 filters an ``$in`` by
    decoding the whole collection): duplicates and unknown ids change nothing."""
    from persistence import AgentRepository

    agents = database.db["agents"]
    await agents.insert_many(
        [{"_id": f"a{i}", "public_profile": {"name": f"Ann {i}"}} for i in range(5)]
    )
    directory = AgentRepository(database)
    assert await directory.existing(["a1", "a3", "a3", "nobody"]) == {"a1", "a3"}
    assert await directory.names(["a4", "a0", "ghost"]) == {"a4": "Ann 4", "a0": "Ann 0"}
    assert await directory.existing([]) == set()
