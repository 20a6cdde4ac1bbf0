"""Reading an agent's inbox queue for its live stream: one exclusive consumer at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika.exceptions
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel

from bus.publisher import EventBus


class InboxBusy(Exception):
    """Another stream of the same agent is consuming its inbox."""


@dataclass
class Inbox:
    channel: AbstractRobustChannel
    queue: AbstractQueue
    tag: str
    buffer: asyncio.Queue[AbstractIncomingMessage]

    async def messages(self, stop: asyncio.Event) -> AsyncIterator[AbstractIncomingMessage]:
        """Messages in queue order until ``stop`` is set."""
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.create_task(self.buffer.get())
                done, _ = await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                yield getter.result()
        finally:
            stopped.cancel()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.queue.cancel(self.tag)
        with contextlib.suppress(Exception):
            await self.channel.close()  # unacked messages go back to the queue, in order


async def open_inbox(bus: EventBus, agent_id: str, prefetch: int = 64) -> Inbox:
    name = await bus.ensure_inbox(agent_id)
    channel = await bus.connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.get_queue(name, ensure=False)
    buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    try:
        tag = await queue.consume(buffer.put, exclusive=True)
    except aio_pika.exceptions.ChannelClosed as exc:  # ACCESS_REFUSED: exclusive consumer
        with contextlib.suppress(Exception):
            await channel.close()
        raise InboxBusy(agent_id) from exc
    return Inbox(channel, queue, tag, buffer)
