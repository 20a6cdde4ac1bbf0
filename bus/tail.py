"""Watch the event stream: a temporary queue on the topic exchange (``agora events tail``,
the observer streams, the A2A door's replies)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from bus.inbox import ending
from bus.publisher import EventBus
from models.events import EventEnvelope

PREFETCH = 256
"""Events a watcher holds unacknowledged: past them, what it has not taken waits in its
queue at the broker, not in this process."""


class WatchLost(Exception):
    """The watcher's broker connection went away, and its queue with it: what was
    published meanwhile it did not see. It ends; its client starts again."""


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
    dropped first, in case the check comes late. It never drops silently: it ends.

    A watcher whose connection goes away ends with ``WatchLost`` (its channel is never
    restored: a queue declared again after a reconnect would have started empty, the
    events published in between missed without a word)."""
    channel = await bus.reader_channel(PREFETCH)
    lost = asyncio.Event()
    channel.close_callbacks.add(lambda *_: lost.set())
    try:
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
        ended = asyncio.Event()  # stopped, or lost
        stopping = asyncio.create_task(_first_of(stop, lost, ended))
        try:
            if max_backlog is None:
                await ended.wait()
            else:
                await _until_ended_or_behind(channel, queue.name, ended, max_backlog, check_seconds)
            if lost.is_set() and not stop.is_set():
                raise WatchLost
        finally:
            stopping.cancel()
            await ending(lambda: queue.cancel(tag))
            await ending(lambda: queue.delete(if_unused=False, if_empty=False))
    finally:
        await ending(channel.close)


async def _first_of(stop: asyncio.Event, lost: asyncio.Event, ended: asyncio.Event) -> None:
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        ended.set()
    finally:
        for wait in waits:
            wait.cancel()


async def _until_ended_or_behind(
    channel, name: str, ended: asyncio.Event, max_backlog: int, every: float
) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), every)
            return
        waiting = await channel.declare_queue(name, passive=True)  # its ready count
        if (count := waiting.declaration_result.message_count or 0) >= max_backlog:
            raise TooSlow(count)
