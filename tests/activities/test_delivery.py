"""The delivery step's rule for the chat's stored ``last_seq``: raised with the notices."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from activities.delivery import told_through
from models.attention import DialogueNotice


def notice(last_seq: int, floor: str | None = None) -> DialogueNotice:
    return DialogueNotice(
        chat_id="g-1", chat_type="group", last_seq=last_seq, floor=floor, at=datetime.now(UTC)
    )


def test_the_newest_seq_told_is_the_one_stored():
    told = {"ann": notice(7), "bob": notice(9), "cy": notice(0, floor="granted")}
    assert told_through(told) == ("g-1", 9)


def test_notices_that_tell_of_no_message_raise_nothing():
    assert told_through({}) is None
    assert told_through({"ann": notice(0, floor="granted")}) is None


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 10**6), max_size=8))
def test_it_is_the_highest_seq_told_or_none(seqs: dict[str, int]):
    told = told_through({agent: notice(seq) for agent, seq in seqs.items()})
    highest = max(seqs.values(), default=0)
    assert told == (("g-1", highest) if highest > 0 else None)
