"""Live events of A2A tasks between API processes: a topic exchange keyed by task id.

What a process's running task emits goes here; a process that is asked to stream a task
it does not run binds a queue of its own to the task's key and relays what comes. The
events are live only (the task store keeps the state): transient, never returned."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from bus.inbox import ending
from bus.publisher import EventBus


class TaskEvents:
    """One process's side of the exchange (declared on first use, again by the robust
    channel after a reconnect)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._exchange: AbstractExchange | None = None

    async def _declared(self) -> AbstractExchange:
        if self._exchange is None:
            self._exchange = await self.bus.channel.declare_exchange(
                self.bus.topology.task_events, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def publish(self, task_id: str, body: bytes) -> None:
        """Send one task event to the processes that stream the task (none is fine)."""
        exchange = await self._declared()
        await exchange.publish(
            aio_pika.Message(body, content_type="application/x-protobuf"),
            routing_key=task_id,
            mandatory=False,
            timeout=self.bus.publish_timeout,
        )

    @contextlib.asynccontextmanager
    async def following(self, task_id: str) -> AsyncIterator[asyncio.Queue[bytes | None]]:
        """The task's events published from the moment this is entered (its queue is
        bound by then) until it is left; the broker's queue goes with it, or with the
        connection. ``None`` comes when the connection went: what was published after it
        is not in this queue (the caller binds again and reads the stored task), where a
        restored channel would have gone on with a gap nobody saw."""
        exchange = await self._declared()
        channel = await self.bus.reader_channel(prefetch=0)
        received: asyncio.Queue[bytes | None] = asyncio.Queue()
        channel.close_callbacks.add(lambda *_: received.put_nowait(None))
        try:
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(exchange, routing_key=task_id)

            async def deliver(message: AbstractIncomingMessage) -> None:
                await received.put(message.body)

            tag = await queue.consume(deliver, no_ack=True)
            try:
                yield received
            finally:
                await ending(lambda: queue.cancel(tag))
                await ending(lambda: queue.delete(if_unused=False, if_empty=False))
        finally:
            await ending(channel.close)
