"""Group commits and coalesced watermarks: pure asyncio, no store."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistence.batching import Coalescer, GroupCommit


class Store:
    """Records each write; fails the writes whose number is in ``failing``."""

    def __init__(self, failing: set[int] = frozenset(), delay: float = 0.0) -> None:
        self.writes: list[list] = []
        self.failing, self.delay = failing, delay

    async def write(self, items) -> None:
        await asyncio.sleep(self.delay)
        number = len(self.writes)
        self.writes.append(list(items) if isinstance(items, list) else dict(items))
        if number in self.failing:
            raise ConnectionError("the store is away")


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 120), st.integers(1, 30))
def test_every_submitted_item_is_written_once_in_order_in_bounded_batches(n, max_batch):
    async def run() -> list[list]:
        store = Store(delay=0.001)
        commits = GroupCommit(store.write, max_batch)
        await asyncio.gather(*(commits.submit(i) for i in range(n)))
        return store.writes

    writes = asyncio.run(run())
    assert [i for batch in writes for i in batch] == list(range(n))
    assert all(1 <= len(batch) <= max_batch for batch in writes)


async def test_concurrent_callers_share_a_write_and_a_lone_one_goes_at_once():
    store = Store(delay=0.01)
    commits = GroupCommit(store.write)
    await commits.submit("alone")
    assert store.writes == [["alone"]]
    await asyncio.gather(*(commits.submit(i) for i in range(50)))
    assert store.writes[1] == list(range(50))  # a burst: one write
    # callers that come while a write is out wait for it together, and go in the next
    first = asyncio.create_task(commits.submit("first"))
    await asyncio.sleep(0.005)
    await asyncio.gather(first, *(commits.submit(i) for i in range(10)))
    assert store.writes[2:] == [["first"], list(range(10))]


async def test_a_failed_write_fails_exactly_its_own_callers():
    store = Store(failing={0}, delay=0.01)
    commits = GroupCommit(store.write)
    first = asyncio.create_task(commits.submit("a"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commits.submit(x)) for x in "bc"]
    with pytest.raises(ConnectionError):
        await first
    await asyncio.gather(*rest)
    assert store.writes == [["a"], ["b", "c"]]


async def test_a_caller_that_stops_waiting_still_has_its_item_written():
    store = Store(delay=0.05)
    commits = GroupCommit(store.write)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(commits.submit("late"), 0.01)
    await commits.close()
    assert store.writes == [["late"]]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50)), max_size=40),
    st.sets(st.integers(0, 3)),
)
def test_the_highest_mark_of_each_key_is_written_even_through_failed_writes(puts, failing):
    async def run() -> dict:
        store = Store(failing=failing)
        marks = Coalescer(store.write, interval=0.001)
        for key, value in puts:
            marks.put(key, value)
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        # close at least once: while a write is out its batch is not pending, so an
        # empty ``pending`` alone does not mean all is written (a slow CI machine)
        await marks.close()
        while marks.pending:  # failing writes keep theirs for the next
            await marks.close()
        written: dict = {}
        for number, batch in enumerate(store.writes):
            if number not in failing:
                for key, value in batch.items():
                    written[key] = max(written.get(key, value), value)
        return written

    expected: dict = {}
    for key, value in puts:
        expected[key] = max(expected.get(key, value), value)
    assert asyncio.run(run()) == expected


async def test_many_marks_of_one_stream_burst_cost_one_write():
    store = Store()
    marks = Coalescer(store.write, interval=0.05)
    for seq in range(1, 101):
        marks.put(("bob", "g-1"), seq)
    marks.put(("ann", "g-1"), 7)
    marks.put(("bob", "g-1"), 3)  # a redelivered event never moves the mark back
    await asyncio.sleep(0.1)
    assert store.writes == [{("bob", "g-1"): 100, ("ann", "g-1"): 7}]
    await marks.close()
    assert len(store.writes) == 1
