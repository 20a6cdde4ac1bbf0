"""Reading an agent's inbox queue for its live stream: one reader at a time, across every
API process and every broker node.

The reader holds the agent's stream lock, an exclusive queue of its connection
(``Topology.stream_lock``): the broker refuses it to any other connection and drops it
with its connection. An exclusive consumer alone would not do: quorum queues (on a
cluster) accept a second "exclusive" consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aio_pika.exceptions
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from bus.publisher import EventBus

SETTLE_SECONDS = 10.0
"""The longest an acknowledgement (or a rejection) of an event may take to be written."""


class InboxBusy(Exception):
    """Another stream of the same agent is consuming its inbox."""


class InboxLost(Exception):
    """The connection to the broker went away: what was not acked goes back to the queue,
    and the reader comes back for it (a new stream)."""


@dataclass
class Inbox:
    channel: AbstractChannel
    queue: AbstractQueue
    tag: str
    buffer: asyncio.Queue[AbstractIncomingMessage]
    lost: asyncio.Event
    forget: Callable[[], Awaitable[None]]

    async def messages(
        self, stop: asyncio.Event, check_seconds: float | None = None
    ) -> AsyncIterator[AbstractIncomingMessage]:
        """Messages in queue order until ``stop`` is set; ``InboxLost`` when the broker
        connection drops (a consumer is not silently left behind on a dead channel).

        With ``check_seconds``, a reader that has had nothing for that long asks the broker
        whether events wait in its inbox; waiting there at two such checks in a row, they
        are not coming: the broker has dropped this consumer without a word (seen on a
        cluster after a node's death, while the connection stayed up), and the reader ends
        with ``InboxLost`` so that its client opens a new one."""
        stopped = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(self.lost.wait())
        suspect = False
        try:
            while not stop.is_set():
                getter = asyncio.create_task(self.buffer.get())
                done, _ = await asyncio.wait(
                    {getter, stopped, lost},
                    timeout=check_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if getter in done:
                    suspect = False
                    yield getter.result()
                    continue
                getter.cancel()
                if lost in done:
                    raise InboxLost("lost its broker connection")
                if stopped in done:
                    return
                waiting = await self._waiting()
                if waiting and suspect:
                    raise InboxLost(f"has {waiting} events waiting that never came")
                suspect = waiting > 0
        finally:
            stopped.cancel()
            lost.cancel()

    async def _waiting(self) -> int:
        """Events ready in the inbox, not handed to any consumer."""
        try:
            declared = await asyncio.wait_for(
                self.channel.declare_queue(self.queue.name, passive=True), 10
            )
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
            raise InboxLost("has a broker channel that does not answer") from exc
        return declared.declaration_result.message_count or 0

    async def ack(self, message: AbstractIncomingMessage) -> None:
        await self._settle(message.ack(), "acknowledge")

    async def reject(self, message: AbstractIncomingMessage) -> None:
        """To the dead letters (an event that is not one)."""
        await self._settle(message.reject(requeue=False), "dead-letter")

    async def _settle(self, answer: Awaitable[None], what: str) -> None:
        """Within ``SETTLE_SECONDS``: an acknowledgement is written to the connection, not
        answered, and one put on a connection that died as it was written waits for ever
        (aiormq's write queue is not drained again): the stream would stay open, its
        client told nothing more, while its events wait in the broker."""
        try:
            await asyncio.wait_for(answer, SETTLE_SECONDS)
        except (aio_pika.exceptions.AMQPError, RuntimeError, TimeoutError) as exc:
            raise InboxLost(f"could not {what} an event: its connection is gone") from exc

    async def close(self) -> None:
        """Unacked messages go back to the queue, in order. Each step is bounded, so that
        the agent's place in ``bus.reading`` is given back even when the connection died
        under them: held, every later stream of the agent on this process got 4409."""
        await ending(lambda: self.queue.cancel(self.tag))
        await ending(self.channel.close)
        await self.forget()


async def ending(step: Callable[[], Awaitable[object]]) -> None:
    """One step of a reader's end (cancel its consumer, delete its queue, close its
    channel) within ``SETTLE_SECONDS``, never raising: asked on a connection that died as
    it was written, a step is never answered, and the reader (a stream, an observer, a
    task's follower) would never end. What it would have undone, the broker undoes with
    the connection."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(step(), SETTLE_SECONDS)


async def open_inbox(bus: EventBus, agent_id: str, prefetch: int = 64) -> Inbox:
    if agent_id in bus.reading:
        raise InboxBusy(agent_id)
    bus.reading.add(agent_id)
    lock = bus.topology.stream_lock(agent_id)
    held = False
    cut = asyncio.Event()
    """The connection the reader opened on went away, and its lock with it."""

    def on_cut(*_: object) -> None:
        cut.set()

    bus.connection.close_callbacks.add(on_cut)

    async def release() -> None:
        bus.reading.discard(agent_id)
        with contextlib.suppress(Exception):
            bus.connection.close_callbacks.discard(on_cut)
        # a lock whose connection is gone went with it; deleting its name on the next
        # connection would find the agent's next stream's lock (held by another
        # connection: refused, closing the shared channel)
        if held and not cut.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.channel.queue_delete(lock), 5)

    try:
        name = await asyncio.wait_for(bus.ensure_inbox(agent_id), 10)
        channel = await bus.reader_channel(prefetch)  # never restored: see there
        queue = await channel.get_queue(name, ensure=False)
    except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
        await release()
        raise InboxLost("could not be opened: the broker does not answer") from exc
    buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    try:
        await channel.declare_queue(lock, exclusive=True, auto_delete=True)
        held = True
        tag = await queue.consume(buffer.put, exclusive=True)
    except aio_pika.exceptions.ChannelClosed as exc:  # RESOURCE_LOCKED / ACCESS_REFUSED
        with contextlib.suppress(Exception):
            await channel.close()
        await release()
        raise InboxBusy(agent_id) from exc
    except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await channel.close()
        await release()
        raise InboxLost("could not be opened: the broker does not answer") from exc
    lost = asyncio.Event()

    def on_close(*_: object) -> None:
        lost.set()

    bus.connection.close_callbacks.add(on_close)
    channel.close_callbacks.add(on_close)

    async def forget() -> None:
        with contextlib.suppress(Exception):
            bus.connection.close_callbacks.discard(on_close)
        await release()

    return Inbox(channel, queue, tag, buffer, lost, forget)
