"""The skeleton the agent, chat and task workflows share (no Temporal in here).

Each entity workflow decides in its handlers and owes the world three things its main
loop pays with activities: events to publish, in order (``Outbox``), projections of its
state to store, each a version ahead of the one stored (``Projection``), and, when its
history grows long, a continue-as-new (``continue_due``). These hold the bookkeeping over
the workflow's own state (changed in place, so it travels through continue-as-new); the
workflow runs the activities and tells them what went out. ``Wake`` is the main loop's
one timer for its next deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models.events import EventEnvelope, EventPayload


class Outbox:
    """Events a workflow has decided and not yet published, oldest first. ``new_id`` and
    ``now`` are the workflow's own (``workflow.uuid4``, ``workflow.now``), so an event's id
    and time are the same in every replay."""

    def __init__(
        self,
        events: list[EventEnvelope],
        *,
        new_id: Callable[[], str],
        now: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.new_id = new_id
        self.now = now

    def emit(
        self,
        payload: EventPayload,
        recipients: Sequence[str] = (),
        correlation_id: str | None = None,
        *,
        event_id: str | None = None,
    ) -> EventEnvelope:
        """Queue an event of the payload's type (``event_id`` when it is derived from what
        the event is about, as a message's; else a new one)."""
        event = EventEnvelope(
            event_id=event_id or self.new_id(),
            type=payload.TYPE,
            occurred_at=self.now(),
            correlation_id=correlation_id,
            payload=payload.as_dict(),
            recipients=list(recipients),
        )
        self.events.append(event)
        return event

    def __bool__(self) -> bool:
        return bool(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def head(self, limit: int) -> list[EventEnvelope]:
        """The first ``limit`` events, to publish as one batch (still queued)."""
        return self.events[:limit]

    def published(self, count: int) -> None:
        """The first ``count`` events went out: drop them."""
        del self.events[:count]

    def take(self) -> list[EventEnvelope]:
        """Every queued event, to publish now (none left queued)."""
        taken = list(self.events)
        self.events.clear()
        return taken


@dataclass
class Projection:
    """One stored view of a workflow's state: ``version`` counts its changes, ``stored``
    the version last written. Both are fields reached from ``owner`` (the workflow's
    state; a dotted path, as ``"manifest.version"``), so they travel through
    continue-as-new with it."""

    owner: Any
    version_field: str
    stored_field: str

    def _get(self, path: str) -> int:
        value = self.owner
        for name in path.split("."):
            value = getattr(value, name)
        return value

    def _set(self, path: str, value: int) -> None:
        *parents, name = path.split(".")
        target = self.owner
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    @property
    def version(self) -> int:
        return self._get(self.version_field)

    @property
    def stored(self) -> int:
        return self._get(self.stored_field)

    @property
    def behind(self) -> bool:
        return self.version > self.stored

    def changed(self) -> int:
        """A change to store: the new version."""
        self._set(self.version_field, self.version + 1)
        return self.version

    def stored_up_to(self, version: int) -> None:
        """``version`` is written (a later one may be waiting already); never goes back."""
        self._set(self.stored_field, max(self.stored, version))


def continue_due(
    history_length: int,
    suggested: bool,
    updates: int,
    *,
    max_events: int,
    max_updates: int,
) -> bool:
    """Whether a run's history is long enough to continue as new: Temporal suggests it,
    or it holds more events, or it took more updates, than the workflow's bounds (a run
    refuses its 2,001st update)."""
    return suggested or history_length > max_events or updates >= max_updates


def run_is_long(info: Any, updates: int, bounds: Any) -> bool:
    """``continue_due`` for a running workflow: ``info`` is its ``workflow.info()``,
    ``bounds`` its state (``continue_as_new_after_events`` and ``..._updates``)."""
    return continue_due(
        info.get_current_history_length(),
        info.is_continue_as_new_suggested(),
        updates,
        max_events=bounds.continue_as_new_after_events,
        max_updates=bounds.continue_as_new_after_updates,
    )


class Wake:
    """The main loop's timer for its next deadline, kept while the deadline stays.

    A wait with a timeout starts a timer each time round and cancels it whenever
    anything else wakes the loop: in a workflow, two history events and a server timer
    task for every workflow task of a busy entity, for a deadline that mostly did not
    move. This keeps one timer per deadline (``asyncio.sleep``: a durable timer inside a
    workflow, a plain one in a test), started anew only when the deadline changes."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._at: datetime | None = None
        self._timer: asyncio.Task | None = None

    def arm(self, after: timedelta | None) -> None:
        """Be due ``after`` from now (None: no deadline); the running timer stays when
        the deadline is the same."""
        at = None if after is None else self._now() + after
        if at == self._at and self._timer is not None and not self._timer.done():
            return
        self.disarm()
        if at is not None:
            self._at = at
            self._timer = asyncio.ensure_future(asyncio.sleep(after.total_seconds()))

    def rang(self) -> bool:
        """The deadline came (until the next ``arm`` or ``disarm``)."""
        return self._timer is not None and self._timer.done() and not self._timer.cancelled()

    def disarm(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer, self._at = None, None

    async def until(
        self,
        woken: Callable[[], bool],
        after: timedelta | None,
        wait_condition: Callable[[Callable[[], bool]], Awaitable[None]],
    ) -> bool:
        """Wait until ``woken()`` or the deadline ``after`` from now (kept from the last
        wait when it is the same); True when the deadline came (the timer is then gone).
        ``wait_condition``: ``workflow.wait_condition`` in a workflow."""
        self.arm(after)
        await wait_condition(lambda: woken() or self.rang())
        if not self.rang():
            return False
        self.disarm()
        return True
