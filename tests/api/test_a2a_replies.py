"""The A2A door's reply watch is bound to the bus only while A2A tasks wait (and a while
after): bound, it takes a copy of every message of the platform."""

from __future__ import annotations

import asyncio
import uuid

from api.a2a.replies import ReplyWatch
from bus import EventBus
from models.events import EventEnvelope
from tests.conftest import eventually


def sent(chat_id: str, sender: str, seq: int) -> EventEnvelope:
    message = {"chat_id": chat_id, "from": sender, "seq": seq, "content": "here"}
    return EventEnvelope(
        event_id=str(uuid.uuid4()),
        type="message.sent",
        occurred_at="2026-12-07T00:00:00Z",
        payload={"message": message},
    )


async def test_the_reply_watch_unbinds_when_no_task_waits_and_binds_again_for_the_next(
    bus: EventBus,
):
    watch = ReplyWatch(idle_seconds=0.4)
    chat = f"d-{uuid.uuid4().hex[:8]}"
    await watch.start(bus)
    with watch.expect(chat, "hal") as waiter:
        assert watch.watching
        await bus.publish(sent(chat, "hal", 3))
        await asyncio.wait_for(waiter.news.wait(), 10)
        assert waiter.answer(after_seq=2).message["seq"] == 3
        await asyncio.sleep(1.0)  # a task still waits: the watch stays
        assert watch.watching
    await eventually(lambda: _value(watch.watching), lambda on: not on, timeout=5)

    await watch.start(bus)  # the next task binds it again, before it posts
    with watch.expect(chat, "hal") as waiter:
        assert watch.watching
        await bus.publish(sent(chat, "hal", 4))
        await asyncio.wait_for(waiter.news.wait(), 10)
        assert waiter.answer(after_seq=3).message["seq"] == 4
    await watch.stop()
    assert not watch.watching


async def test_a_task_that_comes_as_the_watch_ends_idle_finds_it_bound(bus: EventBus):
    """The idle end and the next task's start cross: the start waits for the ending
    watch and binds a new one (else the task would read the chat every 3 s)."""
    watch = ReplyWatch(idle_seconds=60)
    await watch.start(bus)
    watch._stop.set()  # the idle end, in the moment before the task's start
    await watch.start(bus)
    chat = f"d-{uuid.uuid4().hex[:8]}"
    with watch.expect(chat, "hal") as waiter:
        await asyncio.sleep(1.0)  # the ending watch has ended by now
        assert watch.watching
        await bus.publish(sent(chat, "hal", 1))
        await asyncio.wait_for(waiter.news.wait(), 10)
    await watch.stop()


async def _value(v):
    return v
