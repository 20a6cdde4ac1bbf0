"""The chat's stored ``last_seq`` goes with the notices: the newest seq they tell of."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.attention import DialogueNotice, newest_told


def notice(last_seq: int, floor: str | None = None) -> DialogueNotice:
    return DialogueNotice(
        chat_id="g-1", chat_type="group", last_seq=last_seq, floor=floor, at=datetime.now(UTC)
    )


def test_the_newest_seq_told_is_the_one_stored():
    told = {"ann": notice(7), "bob": notice(9), "cy": notice(0, floor="granted")}
    assert newest_told(told) == 9


def test_notices_that_tell_of_no_message_tell_of_none():
    assert newest_told({}) == 0
    assert newest_told({"ann": notice(0, floor="granted")}) == 0


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 10**6), max_size=8))
def test_it_is_the_highest_seq_told(seqs: dict[str, int]):
    told = newest_told({agent: notice(seq) for agent, seq in seqs.items()})
    assert told == max(seqs.values(), default=0)
