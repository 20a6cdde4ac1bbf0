"""a2a-sdk's event stream between replicas (its ``TaskEventStream``), on RabbitMQ.

a2a-sdk runs a task's executor in the process that was sent the message; a caller that
subscribes to the task through another API process is served from this stream: every
event the running task emits is published under the task's id (``bus.TaskEvents``), and
the other process relays them until the task ends or waits for input. The task store
keeps the state, so the stream is live only: a subscriber reads the stored task once its
queue is bound, and a task that ended just before ends its stream at once. When the bus
connection goes, the subscriber binds again and reads the stored task once more (sent as
a snapshot), so an end published while it was away still ends its stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable

from a2a.server.agent_execution.active_task import INTERRUPTED_TASK_STATES, TERMINAL_TASK_STATES
from a2a.server.cluster.event_stream import TaskEventStream, VersionedEvent
from a2a.server.cluster.version import TaskVersion
from a2a.server.events.event_queue import Event
from a2a.types import (
    Message,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskStatusUpdateEvent,
)
from google.protobuf.json_format import ParseDict

from bus import EventBus, TaskEvents
from persistence import A2ATaskRepository

log = logging.getLogger("agora.a2a")

FINAL_STATES = TERMINAL_TASK_STATES | INTERRUPTED_TASK_STATES
"""A subscription ends there (a2a-sdk's rule)."""


def to_wire(event: Event) -> bytes:
    response = StreamResponse()
    if isinstance(event, Task):
        response.task.CopyFrom(event)
    elif isinstance(event, Message):
        response.message.CopyFrom(event)
    elif isinstance(event, TaskStatusUpdateEvent):
        response.status_update.CopyFrom(event)
    elif isinstance(event, TaskArtifactUpdateEvent):
        response.artifact_update.CopyFrom(event)
    else:
        raise TypeError(f"not a task event: {type(event).__name__}")
    return response.SerializeToString()


def from_wire(body: bytes) -> Event:
    response = StreamResponse.FromString(body)
    which = response.WhichOneof("payload")
    if which is None:
        raise ValueError("a task event with no payload")
    return getattr(response, which)


class BusTaskEventStream(TaskEventStream):
    """Versions are not tracked (Agora's task store is a2a-sdk's unversioned kind): a
    subscriber gets every event published after its queue is bound."""

    def __init__(self, bus: Callable[[], EventBus | None], tasks: A2ATaskRepository) -> None:
        self._bus = bus
        self._tasks = tasks
        self._events: TaskEvents | None = None

    def _current(self) -> TaskEvents | None:
        bus = self._bus()
        if bus is None:
            return None
        if self._events is None or self._events.bus is not bus:
            self._events = TaskEvents(bus)
        return self._events

    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        """Never fails the task: a subscriber elsewhere that misses an event still reads
        the stored task (``GetTask``)."""
        events = self._current()
        if events is None:
            return
        try:
            await events.publish(task_id, to_wire(event.event))
        except Exception as exc:
            log.warning("A2A task %s event not relayed: %s", task_id, type(exc).__name__)

    async def subscribe(
        self, task_id: str, *, after: TaskVersion
    ) -> AsyncGenerator[VersionedEvent, None]:
        resumed = False
        while (events := self._current()) is not None:
            async with events.following(task_id) as received:
                # what happened before the queue was bound (or while the bus was away)
                stored = await self._tasks.task(task_id)
                if stored is not None:
                    task = ParseDict(stored, Task(), ignore_unknown_fields=True)
                    if task.status.state in FINAL_STATES or resumed:
                        yield VersionedEvent(event=task, version=TaskVersion.MISSING)
                    if task.status.state in FINAL_STATES:
                        return
                while (body := await received.get()) is not None:
                    yield VersionedEvent(event=from_wire(body), version=TaskVersion.MISSING)
            log.warning("A2A task %s: the bus connection went; following it again", task_id)
            resumed = True

    async def destroy(self, task_id: str) -> None:
        """Nothing to free: each subscriber's queue goes with its subscription."""
        return None
