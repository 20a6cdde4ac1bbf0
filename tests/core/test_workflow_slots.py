"""The worker's workflow task slots (workers/slots.py): few replays at once, sticky tasks
not held behind them, every slot given back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from workers.slots import WorkflowSlotPermit, WorkflowSlots


@dataclass
class Reserve:
    is_sticky: bool
    slot_type: str = "workflow"
    task_queue: str = "agora"
    worker_identity: str = "test"
    worker_build_id: str = ""
    worker_deployment_version: None = None


@dataclass
class Release:
    permit: WorkflowSlotPermit
    slot_info: None = None


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_replay_waits_for_a_replay_slot_while_a_sticky_task_goes_ahead():
    slots = WorkflowSlots(total=3, shared=1)
    first = await slots.reserve_slot(Reserve(is_sticky=False))
    second_replay = asyncio.create_task(slots.reserve_slot(Reserve(is_sticky=False)))
    await _settle()
    assert not second_replay.done()  # one replay at a time
    sticky = await asyncio.wait_for(slots.reserve_slot(Reserve(is_sticky=True)), 1)
    assert not sticky.shared
    slots.release_slot(Release(first))
    granted = await asyncio.wait_for(second_replay, 1)
    assert granted.shared and slots.used_shared == 1 and slots.used == 2


async def test_every_slot_taken_holds_a_sticky_task_until_one_is_given_back():
    slots = WorkflowSlots(total=2, shared=2)
    held = [await slots.reserve_slot(Reserve(is_sticky=True)) for _ in range(2)]
    waiting = asyncio.create_task(slots.reserve_slot(Reserve(is_sticky=True)))
    await _settle()
    assert not waiting.done()
    assert slots.try_reserve_slot(Reserve(is_sticky=True)) is None  # eager: no slot, no wait
    slots.release_slot(Release(held[0]))
    await asyncio.wait_for(waiting, 1)
    assert slots.used == 2


async def test_a_cancelled_reservation_leaves_no_slot_taken():
    slots = WorkflowSlots(total=2, shared=1)
    first = await slots.reserve_slot(Reserve(is_sticky=False))
    waiting = asyncio.create_task(slots.reserve_slot(Reserve(is_sticky=False)))
    await _settle()
    waiting.cancel()
    slots.release_slot(Release(first))  # its slot would have gone to the cancelled one
    await _settle()
    assert (slots.used, slots.used_shared) == (0, 0)
    again = await asyncio.wait_for(slots.reserve_slot(Reserve(is_sticky=False)), 1)
    assert again.shared


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(2, 6),
    shared=st.integers(1, 6),
    steps=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40),
)
def test_slots_never_exceed_their_bounds_and_all_come_back(total, shared, steps):
    """Any order of reservations (sticky or not) and releases: never more than ``total``
    taken, never more than ``shared`` replays, nobody waits while a slot of their kind is
    free, and once all is given back nothing is taken."""
    shared = min(shared, total)

    async def run() -> None:
        slots = WorkflowSlots(total, shared)
        waiting: list[tuple[asyncio.Task, bool]] = []
        held: list[WorkflowSlotPermit] = []

        def collect() -> list[tuple[asyncio.Task, bool]]:
            held.extend(t.result() for t, _ in waiting if t.done())
            return [(t, sticky) for t, sticky in waiting if not t.done()]

        for reserve, sticky in steps:
            if reserve:
                task = asyncio.create_task(slots.reserve_slot(Reserve(is_sticky=sticky)))
                waiting.append((task, sticky))
            elif held:
                slots.release_slot(Release(held.pop(0)))
            await _settle()
            waiting = collect()
            assert slots.used <= total and slots.used_shared <= shared
            assert slots.used == len(held)
            assert slots.used_shared == sum(p.shared for p in held)
            for _, sticky in waiting:  # each waits for a reason
                assert slots.used == total or (not sticky and slots.used_shared == shared)
        while held or waiting:
            if held:
                slots.release_slot(Release(held.pop()))
            await _settle()
            waiting = collect()
        assert (slots.used, slots.used_shared) == (0, 0)

    asyncio.run(run())


def test_the_settings_refuse_more_replay_slots_than_slots():
    with pytest.raises(ValueError, match="AGORA_WORKFLOW_REPLAY_SLOTS"):
        Settings(workflow_task_slots=4, workflow_replay_slots=5)
