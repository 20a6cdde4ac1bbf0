"""The dead-letter queue: what no consumer could handle, listed and sent back."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aio_pika
import aio_pika.exceptions

from bus.publisher import EventBus, event_id_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    event_id: str | None
    type: str | None
    queue: str | None
    """The queue it died in (an agent's inbox, say)."""
    reason: str | None
    exchange: str | None
    routing_key: str | None


def _describe(message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    deaths = (message.headers or {}).get("x-death") or [{}]
    death = deaths[0]
    keys = death.get("routing-keys") or [message.routing_key]
    return DeadLetter(
        event_id=event_id_of(message.message_id),
        type=message.type,
        queue=death.get("queue"),
        reason=death.get("reason"),
        exchange=death.get("exchange"),
        routing_key=str(keys[0]) if keys else None,
    )


async def _take(bus: EventBus, limit: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    queue = await bus.channel.get_queue(bus.topology.dead_letter_queue, ensure=True)
    taken = []
    for _ in range(limit):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


async def dead_letters(bus: EventBus, limit: int = 100) -> list[DeadLetter]:
    """Look without taking: each message is put back, in its order."""
    taken = await _take(bus, limit)
    letters = [_describe(m) for m in taken]
    for message in taken:
        await message.nack(requeue=True)
    return letters


async def replay_dead_letters(bus: EventBus, limit: int = 100) -> list[DeadLetter]:
    """Send each dead letter back where it came from (its exchange and routing key), then
    drop it from the dead-letter queue; consumers drop a second copy by its event id. One
    that no queue takes there any more (the broker returns it) stays, and is not listed."""
    replayed = []
    for message in await _take(bus, limit):
        letter = _describe(message)
        exchange = (
            await bus.channel.get_exchange(letter.exchange, ensure=True)
            if letter.exchange
            else bus.channel.default_exchange
        )
        routing_key = letter.routing_key or (letter.queue or "")
        headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
        try:
            await exchange.publish(
                aio_pika.Message(
                    message.body,
                    message_id=message.message_id,
                    type=message.type,
                    correlation_id=message.correlation_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=headers,
                ),
                routing_key=routing_key,
            )
        except aio_pika.exceptions.PublishError:  # nothing takes it there now: it stays
            where = {"event_id": letter.event_id, "routing_key": routing_key}
            log.warning("dead letter not replayed: no queue takes it", extra=where)
            await message.nack(requeue=True)
            continue
        await message.ack()
        replayed.append(letter)
    return replayed
