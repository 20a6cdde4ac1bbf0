"""The skeleton the entity workflows share (``workflows.outbox``), without Temporal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from models.events import ChatClosed, TaskAssigned
from workflows.outbox import Outbox, Projection, Wake, continue_due, run_is_long

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.just("emit"), st.integers(min_value=1, max_value=5), st.just("take")),
        max_size=60,
    )
)
def test_every_event_goes_out_once_and_in_the_order_it_was_decided(steps):
    state: list = []
    ids = iter(range(10_000))
    outbox = Outbox(state, new_id=lambda: f"e{next(ids)}", now=lambda: T0)
    emitted, published = [], []
    for n, step in enumerate(steps):
        if step == "emit":
            emitted.append(outbox.emit(ChatClosed(chat_id=f"c{n}", by="ann")).event_id)
        elif step == "take":
            published += [e.event_id for e in outbox.take()]
        else:
            batch = outbox.head(step)
            published += [e.event_id for e in batch]
            outbox.published(len(batch))
    published += [e.event_id for e in outbox.take()]
    assert published == emitted
    assert state == [] and not outbox  # changed in place: the state travels with it


def test_an_event_carries_what_it_was_given():
    outbox = Outbox([], new_id=lambda: "id-1", now=lambda: T0)
    payload = TaskAssigned(task_id="t-1", title="Sum", status="assigned", agent_id="bob")
    event = outbox.emit(payload, ["ann"], "c-1")
    assert (event.event_id, event.type, event.occurred_at, event.recipients) == (
        "id-1",
        "task.assigned",
        T0,
        ["ann"],
    )
    assert event.correlation_id == "c-1"
    # a field without a value is left out (the other bidders are not told the price)
    assert event.payload == {
        "task_id": "t-1",
        "title": "Sum",
        "status": "assigned",
        "agent_id": "bob",
    }
    assert len(outbox) == 1 and outbox.head(5) == [event]
    # an id derived from what the event is about (a message's) stands instead of a new one
    derived = outbox.emit(payload, event_id="message.sent/room:1")
    assert derived.event_id == "message.sent/room:1"


class Manifest(BaseModel):
    version: int = 0


class State(BaseModel):
    manifest: Manifest = Manifest()
    stored_version: int = -1


def test_a_projection_is_behind_until_its_newest_version_is_stored():
    state = State()
    projection = Projection(state, "manifest.version", "stored_version")
    assert projection.behind  # never stored
    projection.stored_up_to(0)
    assert not projection.behind
    first = projection.changed()
    second = projection.changed()
    assert (first, second, state.manifest.version) == (1, 2, 2)
    projection.stored_up_to(first)  # a write of an older snapshot finished
    assert projection.behind and state.stored_version == 1
    projection.stored_up_to(second)
    projection.stored_up_to(first)  # never goes back
    assert not projection.behind and state.stored_version == 2


def test_continue_as_new_when_suggested_or_past_either_bound():
    bounds = {"max_events": 2_000, "max_updates": 1_500}
    assert not continue_due(1_999, False, 1_499, **bounds)
    assert continue_due(2_001, False, 0, **bounds)
    assert continue_due(10, False, 1_500, **bounds)
    assert continue_due(10, True, 0, **bounds)


def test_a_running_workflow_continues_by_its_own_bounds():
    class Info:
        def __init__(self, length: int, suggested: bool) -> None:
            self.length, self.suggested = length, suggested

        def get_current_history_length(self) -> int:
            return self.length

        def is_continue_as_new_suggested(self) -> bool:
            return self.suggested

    class Bounds:
        continue_as_new_after_events = 100
        continue_as_new_after_updates = 10

    assert not run_is_long(Info(100, False), 9, Bounds())
    assert run_is_long(Info(101, False), 0, Bounds())
    assert run_is_long(Info(5, False), 10, Bounds())
    assert run_is_long(Info(5, True), 0, Bounds())


async def test_the_wake_keeps_one_timer_while_its_deadline_stays():
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    wake = Wake(lambda: clock[0])
    wake.arm(timedelta(seconds=0.05))
    first = wake._timer
    clock[0] += timedelta(seconds=0.01)  # woken by something else, the same deadline
    wake.arm(timedelta(seconds=0.04))
    assert wake._timer is first and not wake.rang()  # no new timer, none cancelled
    await asyncio.sleep(0.08)
    assert wake.rang()
    wake.disarm()
    assert not wake.rang()


async def test_a_moved_deadline_or_none_cancels_the_timer():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    wake = Wake(lambda: now)
    wake.arm(timedelta(seconds=5))
    first = wake._timer
    wake.arm(timedelta(seconds=0.02))  # sooner: a new timer, the old one cancelled
    await asyncio.sleep(0)
    assert first.cancelled() and wake._timer is not first
    await asyncio.sleep(0.05)
    assert wake.rang()
    wake.arm(None)
    assert not wake.rang() and wake._timer is None


async def test_a_wait_ends_when_woken_or_at_its_deadline_and_keeps_the_timer_between():
    """``until`` answers whether the deadline came; a wait that something else ended
    leaves the timer running for the next wait with the same deadline."""
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    wake = Wake(lambda: clock[0])
    woken = [False]

    async def wait_condition(condition) -> None:  # workflow.wait_condition, by polling
        while not condition():  # noqa: ASYNC110 (a stand-in that polls, as a test fake)
            await asyncio.sleep(0.005)

    async def wake_soon() -> None:
        await asyncio.sleep(0.01)
        woken[0] = True

    waker = asyncio.create_task(wake_soon())
    assert not await wake.until(lambda: woken[0], timedelta(seconds=0.1), wait_condition)
    await waker
    first = wake._timer
    woken[0] = False
    assert await wake.until(lambda: woken[0], timedelta(seconds=0.1), wait_condition)
    assert first is not None and first.done() and not first.cancelled()  # the same timer
    assert wake._timer is None and not wake.rang()  # gone once it rang
