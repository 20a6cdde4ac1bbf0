"""Reading an agent's inbox queue for its live stream: one exclusive consumer at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
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
    forget: Callable[[], None]

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
        self.forget()
        with contextlib.suppress(Exception):
            await self.queue.cancel(self.tag)
        with contextlib.suppress(Exception):
            await self.channel.close()  # unacked messages go back to the queue, in order


async def open_inbox(bus: EventBus, agent_id: str, prefetch: int = 64) -> Inbox:
    try:
        name = await asyncio.wait_for(bus.ensure_inbox(agent_id), 10)
        channel = await asyncio.wait_for(bus.connection.channel(), 10)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(name, ensure=False)
    except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
        raise InboxLost from exc
    buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    try:
        tag = await queue.consume(buffer.put, exclusive=True)
    except aio_pika.exceptions.ChannelClosed as exc:  # ACCESS_REFUSED: exclusive consumer
        with contextlib.suppress(Exception):
            await channel.close()
        raise InboxBusy(agent_id) from exc
    lost = asyncio.Event()

    def on_close(*_: object) -> None:
        lost.set()

    bus.connection.close_callbacks.add(on_close)
    channel.close_callbacks.add(on_close)

    def forget() -> None:
        with contextlib.suppress(Exception):
            bus.connection.close_callbacks.discard(on_close)

    return Inbox(channel, queue, tag, buffer, lost, forget)
