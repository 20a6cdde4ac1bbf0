"""Fewer store commands for many small writes: group commits and coalesced watermarks.

FerretDB v1 (the local stand-in, run with --telemetry=disable) spends about as much on
one command as on a hundred documents in it, and the API wrote an audit record per
request and a delivery watermark per streamed burst, each as a command of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

log = logging.getLogger("agora.persistence.batching")


class GroupCommit(Generic[T]):
    """Items that callers wait for, written together.

    ``submit`` puts an item in the next batch and returns once that batch is written
    (or raises what its write raised). One task writes one batch at a time, of at most
    ``max_batch`` items: what arrives meanwhile waits for the next. An idle writer takes
    a lone item at once, so a caller never waits for a timer, only for the write before
    its own. A caller that stops waiting (a timeout) does not take its item back.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[object]], max_batch: int = 100):
        if max_batch < 1:
            raise ValueError("max_batch: at least 1")
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task | None = None
        self.batches = 0
        """Batches written (or failed): how many commands the items took."""

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self.batches += 1
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        """Wait for what was submitted to be written."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class Coalescer(Generic[K]):
    """The highest value per key, written together once per ``interval``.

    For watermarks that only rise (a delivered ``seq``): many puts of one key
    between two writes cost one statement. A write that fails keeps its values for the
    next one (merged with what came meanwhile), so none is lost; ``close`` writes what
    is left.
    """

    def __init__(self, write: Callable[[dict[K, int]], Awaitable[object]], interval: float):
        self._write = write
        self._interval = interval
        self._pending: dict[K, int] = {}
        self._task: asyncio.Task | None = None
        self.writes = 0

    def put(self, key: K, value: int) -> None:
        if value > self._pending.get(key, value - 1):
            self._pending[key] = value
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    @property
    def pending(self) -> dict[K, int]:
        """Marks not handed to a write yet: a write that is out holds its own, and
        puts them back here if it fails."""
        return dict(self._pending)

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self.writes += 1
        try:
            await self._write(batch)
        except BaseException as exc:  # kept for the next write (also when cancelled)
            for key, value in batch.items():
                if value > self._pending.get(key, value - 1):
                    self._pending[key] = value
            if not isinstance(exc, Exception):
                raise
            log.warning("watermarks not written yet (%d): %s", len(batch), type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
