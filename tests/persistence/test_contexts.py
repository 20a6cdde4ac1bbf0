"""The hosted agents' context writes behind their turns (``persistence.contexts``): pure
logic, with a repository that records what it is asked to write."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from persistence.contexts import ContextSaver, DialogueContext


class Recorded:
    """Stands in for ``AttentionRepository``: the writes, in the order they came."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, int]] = []
        self.wrote = asyncio.Event()

    async def put_context(self, agent_id, chat_id, summary, history, last_seq) -> None:
        await asyncio.sleep(0)
        self.writes.append((agent_id, chat_id, last_seq))
        self.wrote.set()


def context(agent: str, chat: str, seq: int) -> DialogueContext:
    return DialogueContext(agent, chat, f"summary {seq}", [{"speaker": "x", "content": "y"}], seq)


async def test_without_an_interval_every_save_is_written_in_order():
    repository = Recorded()
    saver = ContextSaver(repository, 0)
    for seq in (1, 2, 3):
        saver.save(context("a", "c", seq))
    await saver.close()
    assert repository.writes == [("a", "c", 1), ("a", "c", 2), ("a", "c", 3)]


async def test_a_busy_dialogue_is_written_once_an_interval_with_its_newest_context():
    repository = Recorded()
    saver = ContextSaver(repository, 60)
    for seq in range(1, 31):
        saver.save(context("a", "c1", seq))
    for seq in (5, 6, 7):
        saver.save(context("b", "c2", seq))
    await asyncio.sleep(0.05)
    assert repository.writes == []  # the interval has not passed
    assert saver.waiting == 2
    await saver.close()  # the worker stops: what waits is written
    assert sorted(repository.writes) == [("a", "c1", 30), ("b", "c2", 7)]
    assert saver.waiting == 0


async def test_the_write_comes_when_the_interval_ends():
    repository = Recorded()
    saver = ContextSaver(repository, 0.01)
    saver.save(context("a", "c", 1))
    saver.save(context("a", "c", 2))
    await asyncio.wait_for(repository.wrote.wait(), 10)
    assert repository.writes == [("a", "c", 2)]
    saver.save(context("a", "c", 3))  # a new interval for the next turn
    await saver.close()
    assert repository.writes == [("a", "c", 2), ("a", "c", 3)]


async def test_an_older_context_never_replaces_a_newer_one_that_waits():
    repository = Recorded()
    saver = ContextSaver(repository, 60)
    saver.save(context("a", "c", 9))
    saver.save(context("a", "c", 4))
    await saver.close()
    assert repository.writes == [("a", "c", 9)]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["x", "y"]),
            st.integers(min_value=0, max_value=1_000),
        ),
        max_size=60,
    )
)
def test_one_write_a_dialogue_and_it_is_the_newest_saved(saves):
    async def run() -> list[tuple[str, str, int]]:
        repository = Recorded()
        saver = ContextSaver(repository, 60)
        for agent, chat, seq in saves:
            saver.save(context(agent, chat, seq))
        await saver.close()
        return repository.writes

    writes = asyncio.run(run())
    newest: dict[tuple[str, str], int] = {}
    for agent, chat, seq in saves:
        newest[(agent, chat)] = max(seq, newest.get((agent, chat), seq))
    assert len(writes) == len(newest)
    assert {(a, c): s for a, c, s in writes} == newest
