"""A worker's recent messages: a hosted turn reads a run of seqs here only when the run is
held whole, so what it reads is exactly what the store holds."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.chats import Message
from persistence.recent import RecentMessages


def said(seq: int, chat_id: str = "c", content: str | None = None) -> Message:
    return Message(
        message_id=f"{chat_id}:{seq:012d}", chat_id=chat_id, seq=seq, from_="ann",
        timestamp=datetime.now(UTC), message_type="text",
        content=content if content is not None else f"m{seq}", is_private=False,
    )  # fmt: skip


def test_a_run_held_whole_is_read_and_a_gap_sends_the_turn_to_the_store():
    recent = RecentMessages()
    recent.add([said(1), said(2), said(4)])
    assert [m.seq for m in recent.since("c", 0, 2)] == [1, 2]
    assert recent.since("c", 0, 4) is None  # 3 is not held
    recent.add([said(3)])  # the hand-over's post, before the deliver step's batch
    assert [m.seq for m in recent.since("c", 0, 4)] == [1, 2, 3, 4]
    assert recent.since("other", 0, 1) is None
    assert recent.since("other", 5, 5) == []


def test_a_message_held_twice_keeps_its_first_copy():
    recent = RecentMessages()
    recent.add([said(1, content="first")])
    recent.add([said(1, content="again")])
    assert [m.content for m in recent.since("c", 0, 1)] == ["first"]


def test_each_chat_keeps_its_last_messages_and_the_least_recent_chat_goes_first():
    recent = RecentMessages(per_chat=3, chats=2)
    recent.add([said(s) for s in range(1, 6)])
    assert recent.since("c", 0, 5) is None and [m.seq for m in recent.since("c", 2, 5)] == [3, 4, 5]
    recent.add([said(1, "d")])
    recent.add([said(1, "e")])  # "c" was used least recently: evicted
    assert recent.since("c", 2, 5) is None and recent.since("e", 0, 1) is not None


@given(
    held=st.sets(st.integers(min_value=1, max_value=40)),
    after=st.integers(min_value=0, max_value=40),
    through=st.integers(min_value=0, max_value=45),
)
def test_a_read_is_a_gapless_run_from_after_through_the_asked_seq_or_nothing(held, after, through):
    recent = RecentMessages()
    recent.add([said(s) for s in held])
    run = recent.since("c", after, through)
    wanted = range(after + 1, through + 1)
    if all(s in held for s in wanted):
        assert run is not None
        seqs = [m.seq for m in run]
        assert seqs == list(range(after + 1, after + 1 + len(seqs)))  # from after, no gap
        assert len(seqs) >= len(wanted) and after + len(seqs) + 1 not in held  # as far as held
    else:
        assert run is None
