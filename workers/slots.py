"""Workflow task slots: few replays at once, any number of cached workflows' tasks.

A task from the shared queue (a worker that has not the workflow cached) replays the
whole history; one from this worker's sticky queue runs only the new events. A worker
that starts while others stop (a crash, a rolling restart) gets every busy workflow's
task from the shared queue at once. Taken all together, the replays share one
interpreter and each finishes late; past the workflow task timeout (ten seconds) every
one of them times out, is retried, times out again, until the server backs the
workflow off for minutes (seen in the cluster's rolling restart: ten chats refused posts
for two minutes). Taken a few at a time, each replay ends in well under a second, and
the other workers take their share of the queue meanwhile.

``WorkflowSlots`` is a Temporal ``CustomSlotSupplier``: at most ``total`` workflow tasks
in progress, of which at most ``shared`` came from the shared queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)


class WorkflowSlotPermit(SlotPermit):
    def __init__(self, shared: bool) -> None:
        self.shared = shared


@dataclass
class _Waiter:
    shared: bool
    loop: asyncio.AbstractEventLoop
    granted: asyncio.Future[None]


class WorkflowSlots(CustomSlotSupplier):
    """At most ``total`` workflow task slots, at most ``shared`` of them for polls of the
    shared queue; waiting reservations are granted in the order they came, as soon as
    their kind fits (a sticky poll is not held behind a replay that waits)."""

    def __init__(self, total: int, shared: int) -> None:
        if not total >= 2 or not 1 <= shared <= total:
            raise ValueError("need total >= 2 and 1 <= shared <= total")
        self.total, self.shared = total, shared
        self.used = self.used_shared = 0
        self._lock = threading.Lock()  # release_slot may come from another thread
        self._waiting: deque[_Waiter] = deque()

    def _take(self, shared: bool) -> bool:
        if self.used >= self.total or (shared and self.used_shared >= self.shared):
            return False
        self.used += 1
        self.used_shared += shared
        return True

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        shared = not ctx.is_sticky
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._take(shared):
                return WorkflowSlotPermit(shared)
            waiter = _Waiter(shared, loop, loop.create_future())
            self._waiting.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiting:  # else granted meanwhile: _grant gives it back
                    self._waiting.remove(waiter)
            raise
        return WorkflowSlotPermit(shared)

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        shared = not ctx.is_sticky
        with self._lock:
            return WorkflowSlotPermit(shared) if self._take(shared) else None

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        return None

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        permit = ctx.permit
        self._give_back(permit.shared if isinstance(permit, WorkflowSlotPermit) else False)

    def _give_back(self, shared: bool) -> None:
        granted = []
        with self._lock:
            self.used -= 1
            self.used_shared -= shared
            for waiter in list(self._waiting):
                if self._take(waiter.shared):
                    self._waiting.remove(waiter)
                    granted.append(waiter)
        for waiter in granted:
            try:
                waiter.loop.call_soon_threadsafe(self._grant, waiter)
            except RuntimeError:  # its loop is closed (the worker is gone): nobody waits
                self._give_back(waiter.shared)

    def _grant(self, waiter: _Waiter) -> None:
        if waiter.granted.done():  # its reservation was cancelled: the slot goes back
            self._give_back(waiter.shared)
        else:
            waiter.granted.set_result(None)
