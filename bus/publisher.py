"""Publishing events: a robust connection, publisher confirms, persistent messages."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, AbstractRobustExchange

from bus.topology import Topology
from core.settings import Settings
from core.tracing import inject_headers, publish_span
from models.events import EventEnvelope

log = logging.getLogger(__name__)


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

    async def publish_batch(self, events: list[EventEnvelope]) -> None:
        """Publish many events, pipelined: frames go out in order, confirms are awaited together."""
        with publish_span(events):
            await asyncio.gather(*(p for event in events for p in self._publishes(event)))
        log.debug("events published", extra={"event_id": events[-1].event_id if events else None})

    def _publishes(self, event: EventEnvelope) -> list:
        body = event.model_dump_json().encode()
        headers = {"type": event.type, "version": event.version} | inject_headers()
        message = aio_pika.Message(
            body,
            message_id=event.event_id,
            correlation_id=event.correlation_id,
            content_type="application/json",
            type=event.type,
            timestamp=event.occurred_at,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
        )
        confirms = [
            self.events.publish(message, routing_key=event.type, timeout=self.publish_timeout)
        ]
        confirms += [
            self.inbox.publish(message, routing_key=agent_id, timeout=self.publish_timeout)
            for agent_id in event.recipients
        ]
        return confirms

    async def ensure_inbox(self, agent_id: str) -> str:
        """Declare an agent's durable inbox queue, bound to its key on the inbox exchange."""
        name = self.topology.inbox_queue(agent_id)
        queue = await self.channel.declare_queue(
            name,
            durable=True,
            arguments=self.durable_queue_arguments(
                **{"x-dead-letter-exchange": self.topology.dead_letters}
            ),
        )
        await queue.bind(self.inbox, routing_key=agent_id)
        return name

    async def queue_depth(self, name: str) -> int:
        """Messages waiting in a queue that exists (a passive declare)."""
        queue = await self.channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0

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
    channel = await connection.channel(publisher_confirms=True)
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
