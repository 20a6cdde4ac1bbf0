"""Group chats opened together keep their notices apart: each chat's interval is scaled by
a factor its id alone decides."""

from __future__ import annotations

import statistics
import uuid

from hypothesis import given
from hypothesis import strategies as st

from models.chats import spread_interval

ids = st.text(min_size=1, max_size=40)


@given(ids, st.floats(0.1, 60), st.floats(0, 1))
def test_a_chats_interval_stays_within_its_spread_and_is_the_same_everywhere(chat_id, s, spread):
    got = spread_interval(s, chat_id, spread)
    assert s * (1 - spread / 2) <= got < s * (1 + spread / 2) + 1e-9
    assert got == spread_interval(s, chat_id, spread)  # every process, every replay


@given(ids, st.floats(0.1, 60))
def test_no_spread_is_the_interval_itself(chat_id, s):
    assert spread_interval(s, chat_id, 0.0) == s


def test_rooms_opened_together_fall_apart_evenly_around_the_interval():
    got = [spread_interval(5.0, f"g-{uuid.uuid4().hex[:20]}", 0.5) for _ in range(2_000)]
    assert 4.9 < statistics.mean(got) < 5.1
    # spread over the whole range: no quarter of it left empty
    quarters = {min(int((g - 3.75) / 0.625), 3) for g in got}
    assert quarters == {0, 1, 2, 3}
