"""Attention scoring and both schedulers: unit tests and properties (no Temporal)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from models.attention import AttentionState, AttentionWeights, DialogueEntry
from workflows.attention import (
    calculate_priority,
    choose_focus,
    pick_priority,
    pick_weighted_round_robin,
    priority_parts,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
W = AttentionWeights()


def entry(chat_id: str, **fields) -> DialogueEntry:
    return DialogueEntry(chat_id=chat_id, **fields)


def test_a_granted_floor_with_a_near_deadline_is_focused_first_under_priority():
    state = AttentionState(
        entries={
            "busy-room": entry("busy-room", unread=40, importance=0.9, mentioned=True),
            "my-turn": entry("my-turn", floor_granted=True, deadline=NOW + timedelta(minutes=5)),
            "quiet": entry("quiet", unread=1),
        }
    )
    assert choose_focus(state, NOW) == "my-turn"


def test_a_mention_outranks_plain_unread_and_weights_can_change_that():
    state = AttentionState(
        entries={"a": entry("a", unread=5), "b": entry("b", mentioned=True, unread=1)}
    )
    assert choose_focus(state, NOW) == "b"
    state.weights = AttentionWeights(mentioned=0, unread=10)
    assert choose_focus(state, NOW) == "a"


def test_nothing_to_attend_to_means_no_focus():
    state = AttentionState(entries={"a": entry("a", importance=1.0)})
    assert choose_focus(state, NOW) is None


def test_a_hand_up_in_a_floor_chat_keeps_the_focus_only_while_nothing_else_calls():
    waiting = entry("room", floor_control=True, requested=True)
    state = AttentionState(entries={"room": waiting, "dm": entry("dm")}, focus="room")
    assert choose_focus(state, NOW) is None  # as first written: nothing to attend to
    assert choose_focus(state, NOW, keep_waiting=True) == "room"  # its turn is coming
    state.entries["dm"].unread = 1
    assert choose_focus(state, NOW, keep_waiting=True) == "dm"  # real work comes first
    state.entries["dm"].unread = 0
    state.focus = "dm"  # a focus elsewhere is not moved to a room where it only waits
    assert choose_focus(state, NOW, keep_waiting=True) is None
    state.focus, waiting.requested = "room", False  # its hand is down: it lets go
    assert choose_focus(state, NOW, keep_waiting=True) is None


def test_overdue_deadlines_score_highest_urgency_and_recent_dialogues_warm_up():
    overdue = calculate_priority(entry("x", deadline=NOW - timedelta(hours=1)), W, NOW)
    later = calculate_priority(entry("x", deadline=NOW + timedelta(hours=10)), W, NOW)
    assert overdue > later
    fresh = calculate_priority(entry("x", last_interaction=NOW), W, NOW)
    stale = calculate_priority(entry("x", last_interaction=NOW - timedelta(hours=5)), W, NOW)
    assert fresh > stale


def test_priority_ties_go_to_the_smaller_id():
    assert pick_priority({"b": 1.0, "a": 1.0, "c": 0.5}) == "a"


def test_weighted_round_robin_shares_in_proportion():
    credit: dict[str, float] = {}
    picks = [pick_weighted_round_robin({"a": 3.0, "b": 1.0}, credit) for _ in range(400)]
    assert picks.count("a") == 300 and picks.count("b") == 100


signals = st.builds(
    DialogueEntry,
    chat_id=st.just("x"),
    importance=st.floats(0, 1),
    relationship_weight=st.floats(0, 1),
    mentioned=st.booleans(),
    floor_granted=st.booleans(),
    unread=st.integers(0, 10_000),
)


@given(base=signals, extra_unread=st.integers(1, 100))
def test_more_signal_never_lowers_the_score(base, extra_unread):
    score = calculate_priority(base, W, NOW)
    more = base.model_copy(update={"unread": base.unread + extra_unread})
    assert calculate_priority(more, W, NOW) >= score
    for flag in ("mentioned", "floor_granted"):
        assert calculate_priority(base.model_copy(update={flag: True}), W, NOW) >= score


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.floats(0, 100), min_size=1))
def test_priority_picks_a_highest_score(candidates):
    chosen = pick_priority(candidates)
    assert candidates[chosen] == max(candidates.values())


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=2), st.floats(0.5, 50), min_size=1, max_size=8
    )
)
def test_weighted_round_robin_starves_nobody(candidates):
    credit: dict[str, float] = {}
    total = sum(candidates.values())
    bound = 2 * math.ceil(total / min(candidates.values()))  # a share of w/W: a gap of ~W/w
    last_pick = {chat_id: -1 for chat_id in candidates}
    for step in range(3 * bound):
        chosen = pick_weighted_round_robin(candidates, credit)
        last_pick[chosen] = step
        for chat_id in candidates:
            assert step - last_pick[chat_id] <= bound, f"{chat_id} waited more than {bound}"


weights = st.builds(
    AttentionWeights,
    **{name: st.floats(0, 10) for name in AttentionWeights.model_fields},
)


@given(
    base=signals,
    weights=weights,
    minutes=st.floats(0, 600),
    hours_left=st.one_of(st.none(), st.floats(-48, 48)),
)
def test_the_parts_the_console_draws_add_up_to_the_score_that_chooses_the_focus(
    base, weights, minutes, hours_left
):
    dialogue = base.model_copy(
        update={
            "last_interaction": NOW - timedelta(minutes=minutes),
            "deadline": None if hours_left is None else NOW + timedelta(hours=hours_left),
        }
    )
    parts = priority_parts(dialogue, weights, NOW)
    assert set(parts) == {
        "importance",
        "relationship",
        "mentioned",
        "floor",
        "unread",
        "deadline",
        "recency",
    }
    assert all(value >= 0 for value in parts.values())
    # the same bits as the score a replay recomputes: the sum is taken in the same order
    assert sum(parts.values()) == calculate_priority(dialogue, weights, NOW)
    if not dialogue.floor_granted:
        assert parts["floor"] == 0


dialogues = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.builds(
        dict,
        unread=st.integers(0, 3),
        mentioned=st.booleans(),
        floor_granted=st.booleans(),
        floor_control=st.booleans(),
        requested=st.booleans(),
    ),
    max_size=4,
)


@given(dialogues, st.sampled_from([None, "a", "b", "c", "d"]), st.booleans())
def test_keeping_a_waiting_focus_changes_the_choice_only_when_nothing_calls(
    found, focus, round_robin
):
    def state() -> AttentionState:
        entries = {chat_id: entry(chat_id, **fields) for chat_id, fields in found.items()}
        scheduler = "weighted_round_robin" if round_robin else "priority"
        return AttentionState(entries=entries, focus=focus, scheduler=scheduler)

    plain = choose_focus(state(), NOW)
    kept = choose_focus(state(), NOW, keep_waiting=True)
    if plain is not None or kept is None:
        assert kept == plain  # with something to attend to, the same choice
    else:  # nothing called: only the current focus, where the agent waits for its turn
        assert kept == focus and found[focus]["floor_control"] and found[focus]["requested"]
