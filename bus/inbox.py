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
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel

from bus.publisher import EventBus


class InboxBusy(Exception):
    """Another stream of the same agent is consuming its inbox."""


class InboxLost(Exception):
    """The connection to the broker went away: what was not acked goes back to the queue,
    and the reader comes back for it (a new stream)."""


@dataclass
class Inbox:
    channel: AbstractRobustChannel
    queue: AbstractQueue
    tag: str
    buffer: asyncio.Queue[AbstractIncomingMessage]
    lost: asyncio.Event
    forget: Callable[[], Awaitable[None]]

    async def messages(self, stop: asyncio.Event) -> AsyncIterator[AbstractIncomingMessage]:
        """Messages in queue order until ``stop`` is set; ``InboxLost`` when the broker
        connection drops (a consumer is not silently left behind on a dead channel)."""
        stopped = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(self.lost.wait())
        try:
            while not stop.is_set():
                getter = asyncio.create_task(self.buffer.get())
                done, _ = await asyncio.wait(
                    {getter, stopped, lost}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if lost in done:
                        raise InboxLost
                    return
                yield getter.result()
        finally:
            stopped.cancel()
            lost.cancel()

    async def ack(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.ack()
        except (aio_pika.exceptions.AMQPError, RuntimeError) as exc:
            raise InboxLost from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.queue.cancel(self.tag)
        with contextlib.suppress(Exception):
            await self.channel.close()  # unacked messages go back to the queue, in order
        await self.forget()


async def open_inbox(bus: EventBus, agent_id: str, prefetch: int = 64) -> Inbox:
    if agent_id in bus.reading:
        raise InboxBusy(agent_id)
    bus.reading.add(agent_id)
    lock = bus.topology.stream_lock(agent_id)
    held = False

    async def release() -> None:
        bus.reading.discard(agent_id)
        if held:  # a connection that is gone took its lock with it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.channel.queue_delete(lock), 5)

    try:
        name = await asyncio.wait_for(bus.ensure_inbox(agent_id), 10)
        channel = await asyncio.wait_for(bus.connection.channel(), 10)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(name, ensure=False)
    except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
        await release()
        raise InboxLost from exc
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
