"""Publishing events: a robust connection, publisher confirms, persistent messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set
from dataclasses import dataclass, field

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)

from bus.topology import Topology
from core.settings import Settings
from core.tracing import inject_headers, publish_span
from models.events import EventEnvelope

log = logging.getLogger(__name__)


def inbox_message_id(event_id: str, agent_id: str) -> str:
    """The message id of an event's copy for one agent's inbox."""
    return f"{event_id} to {agent_id}"


def event_id_of(message_id: str | None) -> str | None:
    """The event a message id (of the topic exchange's copy or an inbox's) belongs to."""
    return message_id.rsplit(" to ", 1)[0] if message_id else message_id


@dataclass
class EventBus:
    """One connection and channel per process; exchanges declared once at start."""

    connection: AbstractRobustConnection
    channel: AbstractRobustChannel
    events: AbstractRobustExchange
    inbox: AbstractRobustExchange
    topology: Topology
    publish_timeout: float
    queue_type: str = "classic"
    reading: set[str] = field(default_factory=set)
    """The agents whose inbox a stream of this process reads (one reader per agent: the
    broker's stream lock holds it across processes, this set within one connection)."""

    def durable_queue_arguments(self, **arguments: object) -> dict[str, object]:
        """Arguments of a durable queue of this bus: its type (quorum on a cluster)."""
        return {"x-queue-type": self.queue_type, **arguments}

    async def publish(self, event: EventEnvelope) -> None:
        """Publish to the topic exchange and to each recipient's inbox; waits for confirms."""
        with publish_span([event]):
            await asyncio.gather(*self._publishes(event))

    async def publish_batch(
        self, events: list[EventEnvelope], without_inbox: Set[str] = frozenset()
    ) -> None:
        """Publish many events, pipelined: frames go out in order, confirms are awaited
        together. ``without_inbox``: recipients whose inbox gets no copy (hosted agents)."""
        with publish_span(events):
            await asyncio.gather(
                *(p for event in events for p in self._publishes(event, without_inbox))
            )
        log.debug("events published", extra={"event_id": events[-1].event_id if events else None})

    def _publishes(self, event: EventEnvelope, without_inbox: Set[str] = frozenset()) -> list:
        body = event.model_dump_json().encode()
        headers = {"type": event.type, "version": event.version} | inject_headers()

        def message(message_id: str) -> aio_pika.Message:
            return aio_pika.Message(
                body,
                message_id=message_id,
                correlation_id=event.correlation_id,
                content_type="application/json",
                type=event.type,
                timestamp=event.occurred_at,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=headers,
            )

        # the topic exchange is for whoever listens (an observer, a tail): none is fine
        confirms = [
            self.events.publish(
                message(event.event_id),
                routing_key=event.type,
                mandatory=False,
                timeout=self.publish_timeout,
            )
        ]
        # each inbox copy has its own message id: the client matches a returned message
        # to its publish by that id
        confirms += [
            self._to_inbox(message(inbox_message_id(event.event_id, agent_id)), agent_id)
            for agent_id in event.recipients
            if agent_id not in without_inbox
        ]
        return confirms

    async def _to_inbox(self, message: aio_pika.Message, agent_id: str) -> None:
        """Into the agent's inbox, or an error: a copy the broker returns as unroutable
        (no queue bound to the agent's key on the node that took it) is not delivered,
        though confirmed. The inbox is declared again and the copy sent once more; a
        second return fails the publish, and its activity retries it."""
        try:
            await self.inbox.publish(
                message, routing_key=agent_id, mandatory=True, timeout=self.publish_timeout
            )
            return
        except aio_pika.exceptions.PublishError:
            log.warning(
                "an inbox copy came back unroutable; declaring the inbox again",
                extra={"agent_id": agent_id, "event_id": message.message_id},
            )
        await self.ensure_inbox(agent_id)
        await self.inbox.publish(
            message, routing_key=agent_id, mandatory=True, timeout=self.publish_timeout
        )

    async def ensure_inbox(self, agent_id: str) -> str:
        """Declare an agent's durable inbox queue, bound to its key on the inbox exchange.
        Not kept for the robust channel to declare again after a reconnect (``robust=False``):
        a durable queue outlives the connection, and the channel kept one more copy of the
        queue for every call (a stream's every opening), each declared again at reconnect."""
        name = self.topology.inbox_queue(agent_id)
        queue = await self.channel.declare_queue(
            name,
            durable=True,
            arguments=self.durable_queue_arguments(
                **{"x-dead-letter-exchange": self.topology.dead_letters}
            ),
            robust=False,
        )
        await queue.bind(self.inbox, routing_key=agent_id)
        return name

    async def queue_depth(self, name: str) -> int:
        """Messages waiting in a queue that exists (a passive declare)."""
        queue = await self.channel.declare_queue(name, passive=True, robust=False)
        return queue.declaration_result.message_count or 0

    async def reader_channel(self, prefetch: int, timeout: float = 10) -> AbstractChannel:
        """A channel for one reader (a stream, a poll, a watcher) that lives and dies with
        the connection it was opened on: its reader ends with it, and its client comes back.

        A robust channel comes back by itself when the connection does, with what was
        declared and consumed on it. For a reader that had ended meanwhile, that was its
        exclusive stream lock declared again (refused by the broker while the agent's next
        stream held it, which failed the whole reconnection, again every 5 s) and its
        consumer taking events for nobody; a watcher's queue came back empty, its gap
        unnoticed."""
        await asyncio.wait_for(self.connection.ready(), timeout)
        channel = aio_pika.Channel(self.connection, publisher_confirms=False)
        await asyncio.wait_for(channel.initialize(), timeout)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def ping(self) -> None:
        if self.connection.is_closed:
            raise ConnectionError("RabbitMQ connection is closed")
        await self.channel.get_exchange(self.topology.events, ensure=True)

    async def close(self) -> None:
        await self.connection.close()


async def open_bus(settings: Settings, *, timeout: float | None = None) -> EventBus:
    """Connect, and declare the exchanges and the dead-letter queue (idempotent)."""
    topology = Topology(settings.bus_prefix)
    connection = await aio_pika.connect_robust(
        settings.amqp_url, timeout=timeout or settings.publish_timeout_seconds
    )
    # a mandatory publish the broker returns raises (only the inboxes' copies are)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    dead = await channel.declare_exchange(
        topology.dead_letters, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_queue = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": settings.queue_type}
    )
    await dead_queue.bind(dead)
    events = await channel.declare_exchange(
        topology.events, aio_pika.ExchangeType.TOPIC, durable=True
    )
    inbox = await channel.declare_exchange(
        topology.inbox, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return EventBus(
        connection,
        channel,
        events,
        inbox,
        topology,
        settings.publish_timeout_seconds,
        settings.queue_type,
    )
