"""RabbitMQ publishes, with publisher confirms; each event carries a deterministic id."""

from __future__ import annotations

from temporalio import activity

from bus import EventBus
from models.workflow_io import PublishEventsInput


class EventActivities:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    @activity.defn(name="publish_events")
    async def publish_events(self, data: PublishEventsInput) -> int:
        """Publish a batch of events in order; a retry republishes them with the same ids."""
        for event in data.events:
            await self._bus.publish(event)
        return len(data.events)
