"""Composable termination: the expression parser and its conditions (no Temporal)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.floor import FloorSettings, FloorState
from models.termination import (
    Both,
    Condition,
    Either,
    RoundSoFar,
    TerminationError,
    conditions,
    fired,
    parse,
)
from workflows.floor import Floor

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def test_and_binds_tighter_than_or_and_words_equal_symbols():
    tree = parse('max_turns(12) OR text("Done") and max_messages(40)')
    said_and_long = Both((Condition("text", "done"), Condition("max_messages", 40)))
    assert tree == Either((Condition("max_turns", 12), said_and_long))
    assert parse('max_turns(12) | (text("done") & max_messages(40))') == tree


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("", "empty"),
        ("max_turns", "one argument"),
        ("max_turns(0)", "whole number"),
        ("max_turns(2.5)", "whole number"),
        ("idle(0)", "1 to 3600"),
        ("text(3)", "quoted"),
        ("soon(3)", "unknown condition"),
        ("max_turns(3) and", "ends where"),
        ("(max_turns(3)", "not closed"),
        ("max_turns(3) max_turns(4)", "unexpected"),
        ("max_turns(3) ; drop", "cannot read"),
    ],
)
def test_what_cannot_be_parsed_says_why(source, why):
    with pytest.raises(TerminationError, match=why):
        parse(source)


def test_a_bad_expression_is_refused_at_its_field():
    with pytest.raises(ValueError, match="termination") as refused:
        FloorSettings(termination="max_turns(")
    assert refused.value.errors()[0]["loc"] == ("termination",)


def test_the_fired_conditions_are_the_ones_that_made_it_true():
    tree = parse('max_turns(3) or (text("done") and max_messages(4))')
    quiet = RoundSoFar(turns=1, messages=5)
    assert fired(tree, quiet, T0) is None
    said = RoundSoFar(turns=1, messages=5, said=["done"])
    assert [str(c) for c in fired(tree, said, T0)] == ['text("done")', "max_messages(4)"]
    assert [str(c) for c in fired(tree, RoundSoFar(turns=3), T0)] == ["max_turns(3)"]
    idle = parse("idle(30) and tokens(100)")
    still = RoundSoFar(tokens=150, last_activity_at=T0)
    assert fired(idle, still, T0 + timedelta(seconds=29)) is None
    assert fired(idle, still, T0 + timedelta(seconds=30)) is not None


def floor(**settings) -> Floor:
    return Floor(FloorState(settings=FloorSettings(**settings)), "c")


def test_a_round_ends_when_its_expression_holds_and_says_which_conditions():
    expression = 'text("done") and max_messages(3)'
    f = floor(speaker_policy="round_robin", max_messages_per_turn=5, termination=expression)
    f.request("a", 0, None, T0)
    f.grant_next(T0, ["a", "b"], random.Random(0))
    assert f.posted("a", "we are done", T0) == []  # said, but only one message
    assert f.posted("a", "two", T0) == []
    events = f.posted("a", "three", T0)
    ended = events[-1]
    assert ended.type == "chat.round_ended" and ended.reason == "termination"
    assert ended.conditions == ['text("done")', "max_messages(3)"]
    assert f.state.current_speaker is None and not f.state.round_open
    f.request("b", 0, None, T0)  # a new round starts from nothing
    assert f.state.round == 2 and f.state.messages_in_round == 0 and f.state.said_in_round == []


def test_the_owner_s_stop_ends_the_round_whatever_it_says():
    f = floor(termination="max_turns(100)")
    f.request("a", 0, None, T0)
    f.grant_next(T0, ["a"], random.Random(0))
    events = f.stop("owner", T0)
    assert [e.type for e in events] == ["chat.floor_released", "chat.round_ended"]
    assert events[-1].conditions == ["stopped by owner"]


def test_an_idle_condition_sets_a_deadline_only_ahead_of_now():
    f = floor(termination="idle(30) and max_turns(5)")
    f.request("a", 0, None, T0)
    assert f.next_deadline(T0) == T0 + timedelta(seconds=30)
    assert f.next_deadline(T0 + timedelta(seconds=31)) is None  # passed: no busy timer


leaves = st.one_of(
    st.builds(lambda n: f"max_turns({n})", st.integers(1, 5)),
    st.builds(lambda n: f"max_messages({n})", st.integers(1, 5)),
    st.builds(lambda n: f"tokens({n})", st.integers(1, 50)),
    st.sampled_from(['text("done")', 'text("stop")']),
)
expressions = st.recursive(
    leaves,
    lambda inner: st.builds(
        lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(["and", "or"]), inner
    ),
    max_leaves=6,
)
rounds = st.builds(
    RoundSoFar,
    turns=st.integers(0, 6),
    messages=st.integers(0, 6),
    tokens=st.integers(0, 60),
    said=st.lists(st.sampled_from(["done", "stop"]), unique=True),
)


@settings(max_examples=300, deadline=None)
@given(source=expressions, so_far=rounds, more=st.integers(0, 3))
def test_a_fired_expression_stays_fired_as_the_round_grows_and_names_its_own_conditions(
    source, so_far, more
):
    tree = parse(source)
    found = fired(tree, so_far, T0)
    if found is None:
        return
    assert set(found) <= set(conditions(tree))
    grown = RoundSoFar(
        turns=so_far.turns + more,
        messages=so_far.messages + more,
        tokens=so_far.tokens + more,
        said=so_far.said,
    )
    assert fired(tree, grown, T0) is not None
