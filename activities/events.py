"""RabbitMQ publishes, with publisher confirms; each event carries a deterministic id."""

from __future__ import annotations

import logging

from temporalio import activity

from bus import EventBus
from models.workflow_io import PublishEventsInput

log = logging.getLogger("agora.worker.events")


class EventActivities:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    @activity.defn(name="publish_events")
    async def publish_events(self, data: PublishEventsInput) -> int:
        """Publish a batch of events in order; a retry republishes them with the same ids."""
        await self._bus.publish_batch(data.events, without_inbox=set(data.without_inbox))
        published = activity.metric_meter().create_counter(
            "agora_events_published", "Events published, by type."
        )
        for event in data.events:  # one line per event: a correlation id greps end to end
            published.add(1, {"type": event.type})
            fields = {
                "event_type": event.type,
                "event_id": event.event_id,
                "correlation_id": event.correlation_id,
            }
            log.info("event published", extra=fields)
        return len(data.events)

    @activity.defn(name="ensure_inbox")
    async def ensure_inbox(self, agent_id: str) -> str:
        """Declare the agent's durable inbox queue, so events wait there while it is away."""
        return await self._bus.ensure_inbox(agent_id)
