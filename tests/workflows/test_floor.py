"""Speaker policies and the floor state machine: unit tests and property tests (no Temporal)."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.floor import RECENT_TURNS, FloorRequest, FloorSettings, FloorState
from workflows.floor import Floor, FloorError, summarise
from workflows.policies import SELECTORS, valid_pick

T0 = datetime(2026, 11, 24, tzinfo=UTC)
MEMBERS = ["a", "b", "c", "d", "e"]


def requests(*spec: tuple[str, int]) -> list[FloorRequest]:
    return [
        FloorRequest(agent_id=agent, priority=prio, requested_at=T0, order=i)
        for i, (agent, prio) in enumerate(spec)
    ]


def pick(policy: str, queue, last=None, seed=0):
    return SELECTORS[policy](queue, MEMBERS, last, random.Random(seed))


def test_fifo_takes_the_longest_waiting():
    assert pick("fifo", requests(("c", 0), ("a", 9), ("b", 0))) == "c"


def test_priority_takes_the_highest_then_the_oldest():
    assert pick("priority", requests(("c", 1), ("a", 5), ("b", 5))) == "a"


def test_round_robin_goes_round_the_members_skipping_who_did_not_ask():
    queue = requests(("a", 0), ("d", 0), ("b", 0))
    assert pick("round_robin", queue, last="b") == "d"
    assert pick("round_robin", queue, last="d") == "a"
    assert pick("round_robin", queue, last=None) == "a"


def test_random_is_a_requester_and_repeats_with_the_seed():
    queue = requests(("a", 0), ("b", 0), ("c", 0), ("d", 0))
    draws = {pick("random", queue, seed=s) for s in range(50)}
    assert draws <= {"a", "b", "c", "d"} and len(draws) > 1
    assert pick("random", queue, seed=7) == pick("random", queue, seed=7)


def test_moderator_picks_nobody_by_itself():
    assert pick("moderator", requests(("a", 0))) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("b", "b"),
        (" b. ", "b"),
        ("'b'", "b"),
        ("z", None),
        ("", None),
        (None, None),
        ("b and c", None),
    ],
)
def test_a_model_pick_counts_only_when_it_names_a_requester(answer, expected):
    assert valid_pick(answer, requests(("a", 0), ("b", 0))) == expected


def floor(rotation_grace: bool = False, **settings) -> Floor:
    state = FloorState(settings=FloorSettings(**settings))
    return Floor(state, "chat", rotation_grace=rotation_grace)


def test_a_turn_ends_at_the_message_limit_and_the_next_is_granted():
    f = floor(max_messages_per_turn=2)
    f.request("a", 0, None, T0)
    f.request("b", 0, None, T0)
    granted = f.grant_next(T0, MEMBERS, random.Random(0))
    assert granted[0].type == "chat.floor_granted" and f.state.current_speaker == "a"
    assert f.post_refusal("b") == "the floor is held by a"
    assert f.posted("a", "one", T0) == []
    released = f.posted("a", "two", T0)
    assert [e.type for e in released] == ["chat.floor_released"]
    assert released[0].reason == "message_limit"
    f.grant_next(T0, MEMBERS, random.Random(0))
    assert f.state.current_speaker == "b"


def test_the_time_slot_expires_the_turn():
    f = floor(turn_seconds=5)
    f.request("a", 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    assert f.next_deadline() == T0 + timedelta(seconds=5)
    assert f.expire_due(T0 + timedelta(seconds=4)) == []
    expired = f.expire_due(T0 + timedelta(seconds=5))
    assert [e.type for e in expired] == ["chat.floor_expired"]
    assert f.state.current_speaker is None


def test_max_turns_and_termination_end_the_round_and_a_request_opens_the_next():
    f = floor(max_turns=1, termination_text="TERMINATE")
    f.request("a", 0, None, T0)
    f.request("b", 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    events = f.release("a", T0)
    assert [e.type for e in events] == ["chat.floor_released", "chat.round_ended"]
    assert events[-1].reason == "max_turns"
    assert not f.needs_grant()  # b still waits, but the round is over
    started = f.request("c", 0, None, T0)
    assert started[0].type == "chat.round_started" and f.state.round == 2
    f.grant_next(T0, MEMBERS, random.Random(0))
    assert f.state.current_speaker == "b"
    f.apply({"max_turns": 10})
    ended = f.posted("b", "we are done. terminate", T0)
    assert [e.reason for e in ended] == ["termination", "termination"]


def test_idle_timeout_ends_the_round():
    f = floor(idle_timeout_seconds=10)
    f.request("a", 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    events = f.expire_due(T0 + timedelta(seconds=10))
    assert [e.type for e in events] == ["chat.floor_released", "chat.round_ended"]
    assert events[-1].reason == "idle"


def test_grant_by_hand_needs_a_requester_and_a_free_floor():
    f = floor(speaker_policy="moderator")
    f.request("a", 0, None, T0)
    assert f.grant_next(T0, MEMBERS, random.Random(0)) == []
    with pytest.raises(FloorError):
        f.grant("b", T0, "by hand")
    f.grant("a", T0, "by hand")
    f.request("b", 0, None, T0)
    with pytest.raises(FloorError):
        f.grant("b", T0, "by hand")


class Room:
    """Three members taking turns in a round-robin room of one message a turn."""

    def __init__(self, rotation_grace: bool = True, **settings) -> None:
        self.f = floor(
            rotation_grace, speaker_policy="round_robin", max_messages_per_turn=1, **settings
        )
        self.now = T0
        self.rng = random.Random(0)
        for member in "abc":
            self.f.request(member, 0, None, self.now)
        self.f.grant_next(self.now, ["a", "b", "c"], self.rng)

    def speak(self, ask_again: bool = True) -> str | None:
        """The holder says one thing (and asks for another turn); who holds the floor next."""
        holder = self.f.state.current_speaker
        self.now += timedelta(seconds=1)
        self.f.posted(holder, "hello", self.now)
        if ask_again:
            self.f.request(holder, 0, None, self.now)
        self.grant()
        return self.f.state.current_speaker

    def grant(self) -> None:
        self.f.grant_next(self.now, ["a", "b", "c"], self.rng)


def late_c(room: Room) -> None:
    """Two rounds of a, b, c; then c does not ask again at once: after b, a is the only
    one asking."""
    for _ in range(5):
        room.speak()  # a b c a b, each asking again
    assert room.speak(ask_again=False) == "a"  # c spoke, asks later
    assert room.speak() == "b"


def test_round_robin_holds_the_floor_for_the_next_member_back_for_another_turn():
    room = Room(round_robin_grace_seconds=2)
    late_c(room)
    assert room.speak() is None  # b spoke; a asks, but c is next and is back each round
    assert room.f.state.held_until == room.now + timedelta(seconds=2)
    assert room.f.next_deadline(room.now) == room.f.state.held_until
    room.now += timedelta(seconds=1)
    room.f.request("c", 0, None, room.now)  # c asks within the grace: its turn
    room.grant()
    assert room.f.state.current_speaker == "c"


def test_round_robin_passes_over_a_late_member_after_the_grace_and_then_waits_no_more():
    room = Room(round_robin_grace_seconds=2)
    late_c(room)
    assert room.speak() is None
    room.now += timedelta(seconds=2)
    room.f.expire_due(room.now)
    room.grant()
    assert room.f.state.current_speaker == "a"  # c was passed over and left the rotation
    assert "c" not in room.f.state.rotation
    assert room.speak() == "b"
    assert room.speak() == "a"  # c is not waited for again until it asks again


@pytest.mark.parametrize("grace, on", [(0, True), (2, False)])
def test_round_robin_without_the_grace_grants_the_next_that_asked_at_once(grace, on):
    room = Room(on, round_robin_grace_seconds=grace)  # off: a run from before the grace
    late_c(room)
    assert room.speak() == "a"


def test_the_rotation_is_who_came_back_and_a_first_request_is_not_waited_for():
    room = Room(round_robin_grace_seconds=2)
    assert room.speak(ask_again=False) == "b"  # a said its piece and stays quiet
    assert room.speak() == "c"
    assert room.speak() == "b"  # a never came back: not waited for
    assert room.f.state.rotation == ["b", "c"]


def test_leaving_loses_the_floor_and_the_place():
    f = floor()
    for agent in "abc":
        f.request(agent, 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    f.leave("b", T0)
    assert [r.agent_id for r in f.state.queue] == ["c"]
    events = f.leave("a", T0)
    assert events[0].reason == "left" and f.state.current_speaker is None


def test_a_standing_request_waits_for_a_later_post_then_is_granted():
    """A hosted agent's turn asks for the next one with its post: the request is queued
    at once, but no policy grants it until someone else has spoken."""
    f = floor(speaker_policy="fifo", max_messages_per_turn=1)
    rng = random.Random(0)
    f.request("a", 0, None, T0)
    f.grant_next(T0, MEMBERS, rng)
    f.posted("a", "first", T0)  # the message limit ends a's turn
    f.request("a", 0, "again", T0, standing=True)
    assert f.state.current_speaker is None and f.position("a") == 1
    assert not f.needs_grant() and f.grant_next(T0, MEMBERS, rng) == []
    assert f.view().queue[0].after_next_message
    assert f.next_deadline(T0) is None  # nothing to time out while only it waits
    f.request("b", 0, None, T0)
    assert f.grant_next(T0, MEMBERS, rng)[0].agent_id == "b"  # a waits on
    f.posted("b", "an answer", T0)  # someone spoke after a: a may speak again
    assert not f.view().queue[0].after_next_message
    assert f.grant_next(T0, MEMBERS, rng)[0].agent_id == "a"


def test_a_plain_request_makes_a_standing_one_plain_and_a_standing_one_keeps_a_plain():
    f = floor(speaker_policy="fifo")
    f.request("a", 0, None, T0, standing=True)
    assert not f.needs_grant()
    f.request("a", 0, None, T0)  # asked again, plainly: it may be granted now
    assert f.needs_grant()
    f.request("a", 0, None, T0, standing=True)  # a repeat does not put it back to wait
    assert f.needs_grant()


def test_round_robin_with_standing_requests_goes_round_in_order():
    room = Room(round_robin_grace_seconds=2)
    spoken = []
    for _ in range(9):
        holder = room.f.state.current_speaker
        spoken.append(holder)
        room.now += timedelta(seconds=1)
        room.f.posted(holder, "hello", room.now)
        room.f.request(holder, 0, None, room.now, standing=True)
        room.grant()
    assert spoken == list("abcabcabc") and room.f.state.current_speaker == "a"


def test_an_idle_timeout_does_not_end_a_round_where_only_standing_requests_wait():
    f = floor(speaker_policy="fifo", max_messages_per_turn=1, idle_timeout_seconds=5)
    f.request("a", 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    f.posted("a", "hello", T0)
    f.request("a", 0, None, T0, standing=True)
    assert f.expire_due(T0 + timedelta(minutes=5)) == [] and f.state.round_open


# ---- properties ----------------------------------------------------------------------

agents = st.sampled_from(MEMBERS)
actions = st.one_of(
    st.tuples(st.just("request"), agents, st.integers(0, 10)),
    st.tuples(st.just("release"), agents, st.just(0)),
    st.tuples(st.just("post"), agents, st.just(0)),
    st.tuples(st.just("post_and_ask"), agents, st.just(0)),
    st.tuples(st.just("expire"), agents, st.integers(0, 120)),
    st.tuples(st.just("leave"), agents, st.just(0)),
    st.tuples(st.just("join"), agents, st.just(0)),
    st.tuples(st.just("handoff"), agents, st.integers(0, len(MEMBERS) - 1)),
)


def drive(policy: str, steps, seed: int):
    """Run a random sequence; check the invariants after every step; return the grants."""
    f = floor(
        speaker_policy=policy,
        turn_seconds=60,
        max_messages_per_turn=3,
        max_handoffs_in_row=2,
        handoff_to_any=seed % 2 == 0,
        rotation_grace=seed // 2 % 2 == 0,
        round_robin_grace_seconds=seed % 4,
    )
    members = set(MEMBERS)
    pair, in_row = None, 0
    rng = random.Random(seed)
    now = T0
    grants: list[str] = []
    posts, standing = 0, {}  # who asked with its post, and at which post
    for kind, agent, n in steps:
        now += timedelta(seconds=1)
        if kind == "request" and agent in members:
            f.request(agent, n, None, now)
            standing.pop(agent, None)
        elif kind == "release":
            with contextlib.suppress(FloorError):  # neither holds nor waits: refused, no change
                f.release(agent, now)
        elif kind in ("post", "post_and_ask"):
            accepted = f.post_refusal(agent) is None
            assert accepted == (agent == f.state.current_speaker)
            if accepted:
                posts += 1
                f.posted(agent, "hello", now)
                if kind == "post_and_ask" and f.state.current_speaker is None:
                    f.request(agent, 0, None, now, standing=True)  # the turn ended with it
                    standing[agent] = posts
        elif kind == "expire":
            now += timedelta(seconds=n)
            f.expire_due(now)
        elif kind == "leave":
            members.discard(agent)
            f.leave(agent, now)
        elif kind == "join":
            members.add(agent)
        elif kind == "handoff":
            to = MEMBERS[n]
            speakers = [m for m in MEMBERS if m in members]
            refusal = f.handoff_refusal(agent, to, speakers)
            before = f.state.model_copy(deep=True)
            try:
                f.handoff(agent, to, speakers, now)
            except FloorError:
                assert refusal is not None
                assert f.state == before, "a refused handoff changed the floor"
            else:
                assert refusal is None
                in_row = in_row + 1 if pair == sorted((agent, to)) else 1
                pair = sorted((agent, to))
                assert in_row <= 2, "past the ping-pong bound"
                assert f.state.current_speaker in (to, None)  # None: the round ended
        events = f.grant_next(now, [m for m in MEMBERS if m in members], rng)
        for event in events:
            if event.type == "chat.floor_granted":
                granted = event.agent_id
                assert standing.get(granted, -1) < posts, "granted before anyone spoke after"
                standing.pop(granted, None)
        grants += [e.agent_id for e in events if e.type == "chat.floor_granted"]
        if any(e.type == "chat.floor_granted" for e in events):
            pair, in_row = None, 0  # the policy chose: the handoffs in a row start again
        assert len(f.state.recent_turns) <= RECENT_TURNS
        queued = [r.agent_id for r in f.state.queue]
        assert len(queued) == len(set(queued)), "an agent queued twice"
        assert set(queued) <= members, "a non-member in the queue"
        assert f.state.current_speaker not in queued, "the holder also waits"
        assert f.state.current_speaker is None or f.state.current_speaker in members
        s = f.state
        if f.chooses_by_itself() and s.current_speaker is None and s.round_open and f.waiting():
            # a free floor with requesters is held for round robin's rotation, and a timer
            # comes due to grant it: it never waits for nothing
            assert s.held_until is not None and f.next_deadline(now) is not None
            assert f.policy == "round_robin"
    return f, grants


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(["fifo", "priority", "round_robin", "random", "moderator"]),
    steps=st.lists(actions, max_size=80),
    seed=st.integers(0, 2**32),
)
def test_at_most_one_holder_only_its_posts_and_a_clean_queue(policy, steps, seed):
    drive(policy, steps, seed)


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(["fifo", "round_robin"]),
    waiting=st.lists(agents, min_size=1, max_size=5, unique=True),
    seed=st.integers(0, 2**32),
)
def test_fifo_and_round_robin_grant_every_requester_within_a_bounded_number_of_turns(
    policy, waiting, seed
):
    f = floor(speaker_policy=policy)
    now = T0
    for agent in waiting:
        f.request(agent, 0, None, now)
    granted: list[str] = []
    for _ in range(len(waiting)):  # the bound: one turn per requester
        events = f.grant_next(now, MEMBERS, random.Random(seed))
        granted += [e.agent_id for e in events if e.type == "chat.floor_granted"]
        if f.state.current_speaker:
            # the holder speaks and asks again: it must not starve the others
            holder = f.state.current_speaker
            f.release(holder, now)
            f.request(holder, 0, None, now)
        now += timedelta(seconds=1)
    assert set(waiting) <= set(granted)


def test_a_handoff_ends_the_turn_and_grants_the_named_requester():
    f = floor(max_handoffs_in_row=1)
    for agent in "abc":
        f.request(agent, 0, None, T0)
    f.grant_next(T0, MEMBERS, random.Random(0))
    events = f.handoff("a", "c", MEMBERS, T0 + timedelta(seconds=2))
    assert [e.type for e in events] == ["chat.floor_released", "chat.floor_granted"]
    assert events[0].reason == "handoff"
    assert events[1].reason == "handed over by a"
    assert f.state.current_speaker == "c" and [r.agent_id for r in f.state.queue] == ["b"]
    f.request("a", 0, None, T0)
    refusal = f.handoff_refusal("c", "a", MEMBERS)
    assert refusal is not None and "1 handoffs in a row between c and a" in refusal
    assert f.handoff_refusal("c", "b", MEMBERS) is None  # another pair: allowed


def test_each_turn_is_kept_with_its_model_time_and_overhead():
    f = floor(max_messages_per_turn=2)
    now = T0
    for _ in range(RECENT_TURNS + 5):
        f.request("a", 0, None, now)
        f.grant_next(now, MEMBERS, random.Random(0))
        f.posted("a", "thinking", now + timedelta(seconds=1), model_seconds=0.25)
        f.posted("a", "done", now + timedelta(seconds=2), model_seconds=0.5)
        now += timedelta(seconds=3)
    turns = f.state.recent_turns
    assert len(turns) == RECENT_TURNS and turns[-1].turn == RECENT_TURNS + 5
    last = turns[-1]
    assert last.seconds == 2.0 and last.model_seconds == 0.75 and last.overhead_seconds == 1.25
    assert last.messages == 2 and last.ended_by == "message_limit"
    summary = summarise(turns)
    assert summary.seconds_p50 == 2.0 and summary.overhead_seconds_p99 == 1.25
