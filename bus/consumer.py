"""Consuming a queue: prefetch, manual acks, and a dead letter for what cannot be handled."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from models.events import EventEnvelope

log = logging.getLogger(__name__)

Handler = Callable[[EventEnvelope], Awaitable[None]]


async def consume(
    connection: AbstractRobustConnection,
    queue_name: str,
    handler: Handler,
    *,
    prefetch: int = 32,
    dead_letter_exchange: str | None = None,
    bind: tuple[str, str] | None = None,
) -> Callable[[], Awaitable[None]]:
    """Start consuming; returns a coroutine function that cancels the consumer.

    A message is acknowledged only after ``handler`` returned. A body that is not an
    event is rejected without requeue, which sends it to the dead-letter exchange.
    ``bind`` is ``(exchange, routing_key)`` for a queue that should see topic events.
    """
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    arguments = {"x-dead-letter-exchange": dead_letter_exchange} if dead_letter_exchange else None
    queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
    if bind:
        await queue.bind(bind[0], routing_key=bind[1])

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            event = EventEnvelope.model_validate_json(message.body)
        except ValidationError:
            log.warning("not an event; dead-lettered", extra={"event_id": message.message_id})
            await message.reject(requeue=False)
            return
        async with message.process(requeue=True):
            await handler(event)

    tag = await queue.consume(on_message)

    async def cancel() -> None:
        await queue.cancel(tag)
        await channel.close()

    return cancel
