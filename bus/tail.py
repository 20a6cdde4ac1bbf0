"""Watch the event stream: a temporary queue on the topic exchange (``agora events tail``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bus.publisher import EventBus
from models.events import EventEnvelope


async def tail_events(
    bus: EventBus,
    on_event: Callable[[EventEnvelope], Awaitable[None]],
    types: list[str] | None,
    stop: asyncio.Event,
    on_ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Deliver every event (or those of ``types``) published until ``stop`` is set. The
    queue is exclusive and goes away with the connection: watching takes nothing from
    any agent's inbox. ``on_ready`` runs once the queue is bound: from then on, nothing
    published is missed."""
    queue = await bus.channel.declare_queue(exclusive=True, auto_delete=True)
    for key in types or ["#"]:
        await queue.bind(bus.events, routing_key=key)

    async def deliver(message) -> None:
        async with message.process():
            await on_event(EventEnvelope.model_validate_json(message.body))

    tag = await queue.consume(deliver)
    if on_ready is not None:
        await on_ready()
    try:
        await stop.wait()
    finally:
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
