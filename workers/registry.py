"""What the worker registers; the tests build their workers through the same function."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from activities.events import EventActivities
from activities.store import StoreActivities
from bus import EventBus
from core.settings import Settings
from persistence import Database
from workflows.agent import AgentWorkflow

WORKFLOWS = [AgentWorkflow]
ACTIVITY_CLASSES = (StoreActivities, EventActivities)


def build_worker(
    client: Client, settings: Settings, database: Database, bus: EventBus, **worker_options
) -> Worker:
    """A worker on ``settings.task_queue`` with every workflow and activity registered."""
    store = StoreActivities(database)
    events = EventActivities(bus)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[store.store_manifest, store.store_credential, events.publish_events],
        **worker_options,
    )
