"""This worker's recent messages: a run of seqs is answered whole, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from models.chats import Message
from persistence.recent import RecentMessages

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def message(chat: str, seq: int, text: str | None = None) -> Message:
    return Message(
        message_id=f"{chat}:{seq}",
        chat_id=chat,
        seq=seq,
        from_="a",
        timestamp=T0,
        message_type="text",
        content=text or f"line {seq}",
        is_private=False,
    )


def test_a_run_held_whole_is_answered_with_what_follows_it():
    recent = RecentMessages()
    recent.add(message("c", s) for s in range(1, 6))
    assert [m.seq for m in recent.since("c", 2, 4)] == [3, 4, 5]
    assert recent.since("c", 5, 5) == []
    assert recent.since("other", 0, 0) == []  # told of nothing: nothing to catch up


def test_a_gap_a_stranger_or_an_evicted_seq_sends_the_reader_to_the_store():
    recent = RecentMessages(per_chat=3, chats=1)
    recent.add([message("c", 1), message("c", 3)])
    assert recent.since("c", 0, 3) is None  # seq 2 was delivered elsewhere
    recent.add(message("c", s) for s in (4, 5, 6))
    assert recent.since("c", 2, 6) is None  # 3 was evicted: only the newest 3 are held
    assert [m.seq for m in recent.since("c", 3, 6)] == [4, 5, 6]
    recent.add([message("d", 1)])  # one chat kept: c goes
    assert recent.since("c", 3, 6) is None and recent.since("unknown", 0, 1) is None


def test_an_accepted_message_is_final_a_repeat_changes_nothing():
    recent = RecentMessages()
    recent.add([message("c", 1, "first")])
    recent.add([message("c", 1, "retried")])
    assert recent.since("c", 0, 1)[0].content == "first"


@settings(max_examples=200, deadline=None)
@given(
    delivered=st.lists(st.integers(1, 40), max_size=60),
    after=st.integers(0, 40),
    through=st.integers(0, 40),
    per_chat=st.integers(1, 50),
)
def test_an_answer_is_exactly_the_store_s_run_or_none(delivered, after, through, per_chat):
    recent = RecentMessages(per_chat=per_chat)
    recent.add(message("c", s) for s in delivered)
    answer = recent.since("c", after, through)
    if answer is None:
        return
    seqs = [m.seq for m in answer]
    # a contiguous run from after + 1, reaching at least through, each one delivered
    assert seqs == list(range(after + 1, after + 1 + len(seqs)))
    assert set(seqs) <= set(delivered)
    assert not seqs or seqs[-1] >= through
    assert seqs or through <= after
