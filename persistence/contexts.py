"""Hosted agents' dialogue contexts, written behind their turns: ``ContextSaver``.

A hosted agent's turn ends by saving the dialogue's context (its rolling summary and
recent lines). The worker keeps the newest context in memory for the next turn, and the
store's copy is only read by a worker that lacks it (another worker's turn, a restart),
which then catches up on what was said since from the messages. So the store's copy may
lag a little without anything said being lost to the agent, and each turn's keyed
upsert (a scan of the collection on FerretDB v1) need not happen at every turn: at most
one write per dialogue per interval, the newest context winning, and what waits is
written when the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from persistence.agents import AttentionRepository

log = logging.getLogger("agora.worker.contexts")


@dataclass(frozen=True)
class DialogueContext:
    agent_id: str
    chat_id: str
    summary: str
    history: list[dict]
    last_seq: int

    @property
    def key(self) -> str:
        return f"{self.agent_id}|{self.chat_id}"


class ContextSaver:
    """Debounced context writes: ``save`` never waits; a dialogue saved again within
    ``interval`` seconds of its last write is written once, at the end of the interval,
    with its newest context (``interval`` 0: every save is written at once)."""

    def __init__(self, repository: AttentionRepository, interval: float = 0.0) -> None:
        self._repository = repository
        self._interval = interval
        self._waiting: dict[str, DialogueContext] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._writing: set[asyncio.Task] = set()

    def save(self, context: DialogueContext) -> None:
        """Write this context soon; a newer one saved meanwhile replaces it."""
        held = self._waiting.get(context.key)
        if held is not None and held.last_seq > context.last_seq:
            return  # a later context waits already: this one would take it back
        self._waiting[context.key] = context
        if self._interval <= 0:
            self._write(context.key)
        elif context.key not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[context.key] = loop.call_later(self._interval, self._write, context.key)

    def _write(self, key: str) -> None:
        self._timers.pop(key, None)
        context = self._waiting.pop(key, None)
        if context is None:
            return
        writing = asyncio.ensure_future(
            self._repository.put_context(
                context.agent_id,
                context.chat_id,
                context.summary,
                context.history,
                context.last_seq,
            )
        )
        self._writing.add(writing)
        writing.add_done_callback(self._written)

    def _written(self, writing: asyncio.Task) -> None:
        self._writing.discard(writing)
        if not writing.cancelled() and (error := writing.exception()) is not None:
            # the next turn on a worker without this context reads the older one saved
            # and catches up from the messages: nothing said is lost to the agent
            log.warning("saving a dialogue context failed: %r", error)

    @property
    def waiting(self) -> int:
        """Contexts saved and not yet written."""
        return len(self._waiting)

    async def close(self, timeout: float = 10.0) -> None:
        """Write every context that waits, and wait (at most ``timeout``) for the writes."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for key in list(self._waiting):
            self._write(key)
        if self._writing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._writing, return_exceptions=True), timeout
                )
