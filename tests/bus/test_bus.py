"""Each real service is reached: a document through FerretDB, an event through RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aio_pika.exceptions
import pytest

from bus import EventBus, consume
from models.events import EventEnvelope
from persistence import Database


async def test_a_document_written_through_the_mongodb_wire_protocol_reads_back(database: Database):
    doc_id = uuid.uuid4().hex
    await database.db["smoke"].insert_one({"_id": doc_id, "hello": "agora", "n": 3})
    found = await database.db["smoke"].find_one({"_id": doc_id})
    assert found == {"_id": doc_id, "hello": "agora", "n": 3}
    indexes = await database.db["agents"].index_information()
    assert {"status", "available_resources"} <= set(indexes)


async def test_an_event_published_with_confirm_is_consumed_with_ack(bus: EventBus):
    received: asyncio.Queue[EventEnvelope] = asyncio.Queue()

    async def handler(event: EventEnvelope) -> None:
        await received.put(event)

    queue = f"{bus.topology.prefix}.smoke"
    cancel = await consume(bus.connection, queue, handler, bind=(bus.topology.events, "smoke.#"))
    try:
        event = EventEnvelope(
            event_id=str(uuid.uuid4()),
            type="smoke.tested",
            occurred_at="2026-11-24T00:00:00Z",
            payload={"n": 1},
        )
        await bus.publish(event)
        got = await asyncio.wait_for(received.get(), timeout=10)
        assert got == event
    finally:
        await cancel()
    # acked: nothing is left in the queue for a second consumer
    channel = await bus.connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    assert declared.declaration_result.message_count == 0
    await channel.close()


def unheard(agent_id: str) -> EventEnvelope:
    """An event for one agent's inbox, of a type nobody listens to on the topic exchange."""
    return EventEnvelope(
        event_id=str(uuid.uuid4()),
        type="nobody.listens",
        occurred_at="2026-12-03T00:00:00Z",
        payload={"n": 1},
        recipients=[agent_id],
    )


async def test_an_inbox_the_broker_lost_is_declared_again_and_gets_its_copy(bus: EventBus):
    """A copy the broker returns as unroutable is not delivered though it is confirmed:
    the publish declares the inbox again and sends it there; an event nobody listens to on
    the topic exchange is no error."""
    agent_id = f"lost-{uuid.uuid4().hex[:8]}"
    inbox = await bus.ensure_inbox(agent_id)
    await bus.channel.queue_delete(inbox)  # gone, as a node that lost its bindings
    event = unheard(agent_id)
    await bus.publish(event)
    channel = await bus.connection.channel()
    try:
        queue = await channel.get_queue(inbox, ensure=True)
        message = await queue.get(no_ack=True, fail=False)
        assert message is not None, "the copy for the lost inbox was dropped"
        assert EventEnvelope.model_validate_json(message.body) == event
        assert await queue.get(no_ack=True, fail=False) is None  # once
    finally:
        await channel.close()
    await bus.publish(event.model_copy(update={"event_id": str(uuid.uuid4()), "recipients": []}))


async def test_an_inbox_copy_the_broker_refuses_fails_the_publish(bus: EventBus):
    """A refused copy (nacked: here a full inbox that rejects publishes) fails the publish,
    so its activity retries it; the topic exchange's copy, which nobody listens to, once
    made the client take it for confirmed (both copies had one message id)."""
    agent_id = f"full-{uuid.uuid4().hex[:8]}"
    channel = await bus.connection.channel()
    queue = await channel.declare_queue(
        f"{bus.topology.prefix}.full.{agent_id}",
        auto_delete=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    await queue.bind(bus.inbox, routing_key=agent_id)
    event = unheard(agent_id)
    try:
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await bus.publish(event)
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_a_dead_letter_nothing_takes_back_stays_in_the_dead_letters(bus: EventBus):
    """Its inbox is gone: the replay does not list it, and it is still there to look at
    (before, the broker dropped it and the dead-letter queue let it go)."""
    from bus import dead_letters, replay_dead_letters
    from tests.helpers import dead_letter

    agent_id = f"gone-{uuid.uuid4().hex[:8]}"
    await bus.ensure_inbox(agent_id)
    event = await dead_letter(bus, agent_id)
    await bus.channel.queue_delete(bus.topology.inbox_queue(agent_id))
    replayed = await replay_dead_letters(bus, limit=500)
    assert event.event_id not in [d.event_id for d in replayed]
    assert event.event_id in [d.event_id for d in await dead_letters(bus, limit=500)]
    await bus.ensure_inbox(agent_id)  # back: the next replay takes it home
    assert event.event_id in [d.event_id for d in await replay_dead_letters(bus, limit=500)]


def watched(n: int) -> EventEnvelope:
    return EventEnvelope(
        event_id=str(uuid.uuid4()),
        type="watch.tested",
        occurred_at="2026-12-07T00:00:00Z",
        payload={"n": n},
    )


async def test_a_watcher_that_falls_too_far_behind_ends_and_publishing_goes_on(bus: EventBus):
    """A watcher (an observer stream) that stops taking events ends with ``TooSlow`` once
    its backlog at the broker passes its bound, instead of growing it without end; every
    publish meanwhile is confirmed, and a watcher that keeps up with the same bound gets
    every event."""
    from bus.tail import PREFETCH, TooSlow, tail_events

    stuck, stop = asyncio.Event(), asyncio.Event()
    taken: list[int] = []

    async def slow(event: EventEnvelope) -> None:
        taken.append(event.payload["n"])
        await stuck.wait()  # a client that reads nothing more

    kept: list[int] = []

    async def keeps_up(event: EventEnvelope) -> None:
        kept.append(event.payload["n"])

    ready = [asyncio.Event(), asyncio.Event()]

    async def watch(on_event, i: int) -> None:
        async def bound() -> None:
            ready[i].set()

        await tail_events(
            bus, on_event, ["watch.tested"], stop, on_ready=bound, max_backlog=50, check_seconds=0.2
        )

    lagging = asyncio.create_task(watch(slow, 0))
    keeping = asyncio.create_task(watch(keeps_up, 1))
    for r in ready:
        await asyncio.wait_for(r.wait(), 10)
    total = PREFETCH + 300
    for start in range(0, total, 50):
        await bus.publish_batch([watched(n) for n in range(start, min(start + 50, total))])
    with pytest.raises(TooSlow) as ended:
        await asyncio.wait_for(lagging, 10)
    assert ended.value.backlog >= 50
    assert len(taken) <= PREFETCH  # held by the watcher: no more than it may hold
    for _ in range(100):
        if len(kept) == total:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(keeping, 10)
    assert sorted(kept) == list(range(total))
    stuck.set()


async def test_a_reader_cut_from_the_broker_ends_and_never_comes_back_by_itself(settings, bus):
    """A stream whose broker connection dies (its node killed) ends; the agent's next
    stream, on another API process, gets every event after it, and the cut process serves
    streams again once it has reconnected. Before, the cut process's reconnection restored
    the ended stream's channel with its exclusive lock, which the next stream now held:
    the broker refused it, and the process's whole connection failed again every 5 s."""
    from bus import InboxBusy, InboxLost, open_bus, open_inbox
    from tests.conftest import eventually
    from tests.helpers import BrokerLink

    async def hears(inbox, agent: str, n: int) -> bool:
        """``n`` new events for ``agent`` reach ``inbox``, in order."""
        events = [unheard(agent) for _ in range(n)]
        for event in events:
            await bus.publish(event)
        got: list[str] = []
        async with asyncio.timeout(10):
            async for message in inbox.messages(asyncio.Event()):
                got.append(EventEnvelope.model_validate_json(message.body).event_id)
                await inbox.ack(message)
                if len(got) == n:
                    break
        return got == [e.event_id for e in events]

    agent_id, other = f"cut-{uuid.uuid4().hex[:8]}", f"cut-{uuid.uuid4().hex[:8]}"
    async with BrokerLink(settings.amqp_url) as link:
        cut_bus = await open_bus(settings.model_copy(update={"amqp_url": link.url}))
        drops: list[object] = []
        cut_bus.connection.close_callbacks.add(lambda *args: drops.append(args))
        try:
            inbox = await open_inbox(cut_bus, agent_id)
            link.cut()
            with pytest.raises(InboxLost):
                async for _ in inbox.messages(asyncio.Event()):
                    pass
            # the stream's own end, as the route runs it; the client is back meanwhile
            ending = asyncio.create_task(inbox.close())

            async def reopened(on: EventBus, agent: str):
                with contextlib.suppress(InboxBusy, InboxLost):
                    return await open_inbox(on, agent)

            again = await eventually(lambda: reopened(bus, agent_id), bool, timeout=10)
            try:
                await asyncio.wait_for(ending, 15)
                assert await hears(again, agent_id, 10)
                # the cut process reconnects (after 5 s) and serves a stream again, while
                # the agent's new stream goes on getting all of its events
                served = await eventually(lambda: reopened(cut_bus, other), bool, timeout=20)
                try:
                    assert await hears(served, other, 3)
                finally:
                    await served.close()
                assert len(drops) == 1, f"the cut process lost its connection again: {drops[1:]}"
                assert await hears(again, agent_id, 10)
            finally:
                await again.close()
        finally:
            await cut_bus.close()


async def test_a_watcher_cut_from_the_broker_ends_instead_of_missing_events(settings):
    """A watcher (an observer stream, the A2A reply watch) whose connection dies ends with
    ``WatchLost``, so its client starts again and reads what it missed. Before, its queue
    came back empty with the reconnection and the watch went on, the events published in
    between missed without a word."""
    from bus import WatchLost, open_bus, tail_events
    from tests.helpers import BrokerLink

    async with BrokerLink(settings.amqp_url) as link:
        cut_bus = await open_bus(settings.model_copy(update={"amqp_url": link.url}))
        try:
            bound = asyncio.Event()

            async def ready() -> None:
                bound.set()

            async def ignore(_event: EventEnvelope) -> None:
                pass

            watch = asyncio.create_task(
                tail_events(cut_bus, ignore, ["watch.tested"], asyncio.Event(), on_ready=ready)
            )
            await asyncio.wait_for(bound.wait(), 10)
            link.cut()
            with pytest.raises(WatchLost):
                await asyncio.wait_for(watch, 10)
        finally:
            await cut_bus.close()


async def test_a_reader_whose_consumer_the_broker_dropped_ends_and_the_next_gets_its_events(
    bus: EventBus,
):
    """On a cluster, a stream whose inbox changed leader while its connection stayed up
    heard nothing more, its events waiting in the inbox, until its API restarted. A
    reader that has had nothing for a while now asks the broker whether events wait for
    it; waiting at two checks in a row, it ends, and the agent's next reader gets them.
    The consumer is dropped here beneath the client, as the broker dropped it there."""
    from bus import InboxLost, open_inbox

    agent_id = f"dropped-{uuid.uuid4().hex[:8]}"
    idle = await open_inbox(bus, agent_id)
    try:  # nothing waits: an idle reader goes on
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        assert [m async for m in idle.messages(stop, check_seconds=0.2)] == []
        underlay = await idle.channel.get_underlay_channel()
        await underlay.basic_cancel(idle.tag)  # the client still takes itself for consuming
        event = unheard(agent_id)
        await bus.publish(event)
        with pytest.raises(InboxLost, match="never came"):
            async with asyncio.timeout(10):
                async for _ in idle.messages(asyncio.Event(), check_seconds=0.2):
                    pass
    finally:
        await idle.close()
    again = await open_inbox(bus, agent_id)
    try:
        async with asyncio.timeout(10):
            message = await again.buffer.get()
        assert EventEnvelope.model_validate_json(message.body) == event
        await again.ack(message)
    finally:
        await again.close()


async def test_an_a2a_task_followed_across_a_cut_ends_with_its_stored_state(settings):
    """An A2A subscriber relayed through another API process follows the task's events
    on the bus. Its connection cut while the task ended (the last event published into
    the gap), it binds again and reads the stored task: the stream ends with the task's
    end. Before, the restored queue came back empty and the subscriber waited for ever."""
    from a2a.server.cluster.version import TaskVersion
    from a2a.types import TaskState

    from api.a2a.events import BusTaskEventStream
    from bus import open_bus
    from tests.helpers import BrokerLink

    class Store:
        state = "TASK_STATE_WORKING"

        async def task(self, task_id: str) -> dict:
            return {"id": task_id, "contextId": "c", "status": {"state": self.state}}

    store = Store()
    async with BrokerLink(settings.amqp_url) as link:
        cut_bus = await open_bus(settings.model_copy(update={"amqp_url": link.url}))
        try:
            stream = BusTaskEventStream(lambda: cut_bus, store)  # type: ignore[arg-type]
            states = []

            async def follow() -> None:
                async for versioned in stream.subscribe("t-cut", after=TaskVersion.MISSING):
                    states.append(versioned.event.status.state)

            following = asyncio.create_task(follow())
            await asyncio.sleep(1.0)  # bound, waiting for the task's events
            link.cut()
            store.state = "TASK_STATE_COMPLETED"
            await asyncio.wait_for(following, 30)
            assert states[-1] == TaskState.TASK_STATE_COMPLETED
        finally:
            await cut_bus.close()


async def test_a_watcher_whose_consumer_cancel_is_never_answered_still_ends(
    bus: EventBus, monkeypatch
):
    """A watcher's end cancels its consumer; on a connection that died as the cancel was
    written, no answer ever comes, and the observer stream or tail must end all the same.
    The same holds for a follower of an A2A task's events."""
    import aio_pika.queue

    from bus import inbox
    from bus.tail import tail_events
    from bus.task_events import TaskEvents

    monkeypatch.setattr(inbox, "SETTLE_SECONDS", 0.5)
    asked, never = asyncio.Event(), asyncio.Event()

    async def cancel(queue, *args, **kwargs):
        asked.set()
        await never.wait()  # asked on a connection that is gone: no answer, ever

    monkeypatch.setattr(aio_pika.queue.Queue, "cancel", cancel)
    stop, ready = asyncio.Event(), asyncio.Event()

    async def ignore(event: EventEnvelope) -> None:
        pass

    async def bound() -> None:
        ready.set()

    watcher = asyncio.create_task(tail_events(bus, ignore, ["watch.tested"], stop, on_ready=bound))
    await asyncio.wait_for(ready.wait(), 10)
    stop.set()
    await asyncio.wait_for(watcher, 10)  # before: waited on the cancel for ever
    assert asked.is_set()

    asked.clear()
    follower = TaskEvents(bus)

    async def follow() -> None:
        async with follower.following("task-1"):
            pass

    await asyncio.wait_for(follow(), 10)
    assert asked.is_set()
