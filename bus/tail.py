"""Watch the event stream: a temporary queue on the topic exchange (``agora events tail``,
the observer streams, the A2A door's replies)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from bus.publisher import EventBus
from models.events import EventEnvelope

PREFETCH = 256
"""Events a watcher holds unacknowledged: past them, what it has not taken waits in its
queue at the broker, not in this process."""


class TooSlow(Exception):
    """A watcher fell ``backlog`` events behind what was published for it."""

    def __init__(self, backlog: int) -> None:
        super().__init__(f"{backlog} events waited for this watcher")
        self.backlog = backlog


async def tail_events(
    bus: EventBus,
    on_event: Callable[[EventEnvelope], Awaitable[None]],
    types: list[str] | None,
    stop: asyncio.Event,
    on_ready: Callable[[], Awaitable[None]] | None = None,
    *,
    max_backlog: int | None = None,
    check_seconds: float = 1.0,
) -> None:
    """Deliver every event (or those of ``types``) published until ``stop`` is set. The
    queue is exclusive and goes away with the connection: watching takes nothing from
    any agent's inbox. ``on_ready`` runs once the queue is bound: from then on, nothing
    published is missed.

    With ``max_backlog``, a watcher that falls that many events behind (checked every
    ``check_seconds``) ends with ``TooSlow`` instead of growing its queue at the broker
    without bound (a broker short of memory stops every publisher, so one slow console
    would hold up every delivery). Its queue holds at most twice that many, the oldest
    dropped first, in case the check comes late. It never drops silently: it ends."""
    channel = await bus.connection.channel()
    try:
        await channel.set_qos(prefetch_count=PREFETCH)
        arguments = None
        if max_backlog is not None:
            arguments = {"x-max-length": 2 * max_backlog, "x-overflow": "drop-head"}
        queue = await channel.declare_queue(exclusive=True, auto_delete=True, arguments=arguments)
        for key in types or ["#"]:
            await queue.bind(bus.topology.events, routing_key=key)

        async def deliver(message) -> None:
            async with message.process():
                await on_event(EventEnvelope.model_validate_json(message.body))

        tag = await queue.consume(deliver)
        if on_ready is not None:
            await on_ready()
        try:
            if max_backlog is None:
                await stop.wait()
            else:
                await _until_stopped_or_behind(queue, stop, max_backlog, check_seconds)
        finally:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
                await queue.delete(if_unused=False, if_empty=False)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def _until_stopped_or_behind(
    queue, stop: asyncio.Event, max_backlog: int, every: float
) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
            return
        waiting = await queue.declare()  # the same declaration again: its ready count
        if waiting.message_count >= max_backlog:
            raise TooSlow(waiting.message_count)
