"""A chat's account on the floor machine: deposits, paid turns, the round that would spend
past the balance, withdrawals (pure, no Temporal)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.floor import FloorSettings, FloorState
from workflows.floor import Floor, FloorError

T0 = datetime(2026, 12, 6, tzinfo=UTC)
MEMBERS = ["a", "b", "c"]


def floor(**changes) -> Floor:
    settings = FloorSettings(speaker_policy="round_robin", round_robin_grace_seconds=0)
    return Floor(FloorState(settings=settings.model_copy(update=changes)), "room")


def turn(f: Floor, tokens: int, now: datetime = T0) -> list:
    """Grant the floor by the policy and let its holder post once, yielding."""
    events = f.grant_next(now, MEMBERS, random.Random(0))
    holder = f.state.current_speaker
    if holder is None:
        return events
    events += f.posted(holder, "said", now, 0.1, tokens)
    if f.state.current_speaker == holder:
        events += f.release(holder, now)
    return events


def types(events) -> list[str]:
    return [e.type for e in events]


def test_a_deposit_counts_once_and_a_turn_pays_its_tokens_to_its_speaker():
    f = floor(price_per_1k_tokens=20)
    assert f.deposit("deposit/room/a/k1", 100) and not f.deposit("deposit/room/a/k1", 100)
    for agent in MEMBERS:
        f.request(agent, 0, None, T0)
    events = turn(f, tokens=1001)  # 1001 * 20 / 1000 = 20.02: 21, rounded up
    paid = [e.as_dict() for e in events if e.type == "chat.turn_paid"]
    assert paid == [
        {
            "chat_id": "room",
            "agent_id": "a",
            "round": 1,
            "tokens": 1001,
            "amount": 21,
            "balance": 79,
            "entry_id": "chat-turn/room/1",
        }
    ]
    assert [(c.to, c.amount, c.kind) for c in f.take_unrecorded()] == [("a", 21, "chat_turn")]
    f.recorded(["chat-turn/room/1"])
    assert f.take_unrecorded() == []
    view = f.view().budget
    assert (view.balance, view.spent, view.next_turn_needs) == (79, 21, 21)


def test_the_round_ends_when_the_next_turn_could_spend_past_the_balance():
    f = floor(price_per_1k_tokens=1000)  # a ledger token a model token
    f.deposit("d1", 100)
    for agent in MEMBERS:
        f.request(agent, 0, None, T0)
    turn(f, tokens=40)  # a: 60 left, a turn here may cost 40
    events = turn(f, tokens=30)  # b: 30 left, less than the dearest turn
    ended = [e.as_dict() for e in events if e.type == "chat.round_ended"]
    assert ended == [
        {
            "chat_id": "room",
            "round": 1,
            "reason": "budget",
            "turns": 2,
            "conditions": ["budget: the chat's account holds 30, a turn here may cost 40"],
        }
    ]
    assert f.state.current_speaker is None and not f.needs_grant()
    # a request opens the next round; its grant ends it at once while the account is short
    f.request("a", 0, None, T0 + timedelta(seconds=1))
    assert types(turn(f, tokens=0)) == ["chat.round_ended"]
    # the owner deposits: the next round runs
    f.deposit("d2", 50)
    f.request("a", 0, None, T0 + timedelta(seconds=2))
    assert "chat.floor_granted" in types(turn(f, tokens=10))


def test_a_turn_that_costs_more_than_is_left_pays_what_is_left_and_ends_the_round():
    f = floor(price_per_1k_tokens=1000)
    f.deposit("d1", 25)
    for agent in MEMBERS:
        f.request(agent, 0, None, T0)
    events = turn(f, tokens=60)
    assert types(events) == [
        "chat.floor_granted",
        "chat.turn_paid",
        "chat.floor_released",
        "chat.round_ended",
    ]
    assert events[1].amount == 25 and f.state.budget.balance == 0
    assert events[2].reason == "budget"
    assert events[3].conditions == ["budget: 60 model tokens cost 60, the chat's account held 25"]


def test_a_chat_without_an_account_pays_nothing_and_ends_no_round_for_it():
    f = floor(price_per_1k_tokens=1000)
    for agent in MEMBERS:
        f.request(agent, 0, None, T0)
    for _ in range(5):
        events = turn(f, tokens=500)
        assert "chat.turn_paid" not in types(events)
        assert "chat.round_ended" not in types(events)
    assert f.view().budget is None and f.take_unrecorded() == []


def test_a_withdrawal_never_takes_more_than_the_balance():
    f = floor()
    with pytest.raises(FloorError, match="holds 0"):
        f.withdraw("owner", 1)
    f.deposit("d1", 10)
    before = f.state.model_copy(deep=True)
    with pytest.raises(FloorError, match="holds 10: it cannot return 11"):
        f.withdraw("owner", 11)
    assert f.state == before
    charge = f.withdraw("owner", 6, key="k")
    assert (charge.entry_id, charge.to, charge.kind) == ("withdrawal/room/1", "owner", "withdrawal")
    assert f.withdraw("owner", 6, key="k") is None  # its retry moves nothing
    assert f.withdraw_refusal(6, key="k") is None  # and is not refused for the balance left
    reused = f.withdraw_refusal(3, key="k")  # the key, for another amount
    assert reused.kind == "Invalid" and "already used to withdraw 6" in str(reused)
    assert f.state.budget.balance == 4 and len(f.take_unrecorded()) == 1


steps = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.integers(1, 200)),
        st.tuples(st.just("turn"), st.integers(0, 3000)),
        st.tuples(st.just("withdraw"), st.integers(1, 200)),
        st.tuples(st.just("ask"), st.integers(0, 2)),
        st.tuples(st.just("record"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, price=st.integers(1, 5000))
def test_the_account_never_goes_below_zero_and_every_token_is_accounted_for(steps, price):
    """Whatever comes: the balance is what was deposited less what was paid and returned,
    never negative; each movement has its own id, moves at least one token, and leaves
    the ledger once; no turn is granted while the balance is below what a turn here may
    cost."""
    f = floor(price_per_1k_tokens=price)
    now, deposits, ids, moved = T0, 0, [], 0
    for number, (kind, n) in enumerate(steps):
        now += timedelta(seconds=1)
        if kind == "deposit":
            if f.deposit(f"d{number}", n):
                deposits += n
        elif kind == "withdraw":
            try:
                f.withdraw("owner", n)
            except FloorError:
                assert n > (f.state.budget.balance if f.state.budget else 0)
        elif kind == "ask":
            f.request(MEMBERS[n], 0, None, now)
        elif kind == "record":
            f.recorded([c.entry_id for c in f.take_unrecorded()])
        else:
            budget = f.state.budget
            short = budget is not None and budget.balance < budget.next_turn_needs
            events = turn(f, n, now)
            if short:
                assert "chat.floor_granted" not in types(events), "granted past the budget"
        budget = f.state.budget
        if budget is None:
            continue
        charges = f.take_unrecorded()
        for charge in charges:
            if charge.entry_id not in ids:
                ids.append(charge.entry_id)
                moved += charge.amount
                assert charge.amount >= 1
        assert budget.balance >= 0
        assert budget.balance == deposits - moved
        assert budget.movements == len(ids)
