"""Hear token revocations as they are stored, in every API process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from bus.publisher import EventBus
from models.events import REVOKED, CredentialsRevoked, EventEnvelope

log = logging.getLogger(__name__)


async def watch_revocations(
    bus: EventBus,
    on_revoked: Callable[[CredentialsRevoked], None],
    on_heard: Callable[[bool], None],
) -> Callable[[], Awaitable[None]]:
    """Call ``on_revoked`` for each ``credentials.revoked`` event published from now on,
    and ``on_heard(True)`` once listening (again, after a reconnect) or ``on_heard(False)``
    when the connection drops, when revocations may go unheard. The queue is exclusive to
    this process and goes away with it. Returns the coroutine that stops the watch."""
    queue = await bus.channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(bus.events, routing_key=REVOKED)

    async def deliver(message: AbstractIncomingMessage) -> None:
        async with message.process():
            event = EventEnvelope.model_validate_json(message.body)
            # a tolerant reader: a field a newer process adds is no reason to miss one
            on_revoked(CredentialsRevoked.model_validate(event.payload, extra="ignore"))

    def lost(*_: object) -> None:
        on_heard(False)

    def back(*_: object) -> None:
        on_heard(True)

    tag = await queue.consume(deliver)
    bus.connection.close_callbacks.add(lost)
    bus.connection.reconnect_callbacks.add(back)
    on_heard(True)

    async def stop() -> None:
        on_heard(False)
        bus.connection.close_callbacks.discard(lost)
        bus.connection.reconnect_callbacks.discard(back)
        with contextlib.suppress(Exception):
            await queue.cancel(tag)

    return stop
