"""Hear an agent's answer in a dialogue: what an A2A task waits for.

One watch per API process tails ``message.sent`` and ``agent.reply_failed`` from the
event exchange (an exclusive queue: it takes nothing from any inbox) and hands each to
the tasks waiting in that chat. It runs while A2A tasks wait, and for ``IDLE_SECONDS``
after the last one: bound, it takes a copy of every message of the platform, which an
API serving no A2A task has no use for. A task registers before it posts, so an answer that
comes before the post's own reply is not missed; should the watch lose the bus, the
waiting task reads the chat's messages every few seconds instead (and only then: a
read by chat is a scan on FerretDB).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bus import EventBus
from bus.tail import tail_events
from models.events import EventEnvelope

log = logging.getLogger("agora.api.a2a")

WATCHED = ["message.sent", "agent.reply_failed"]
IDLE_SECONDS = 60.0
"""How long the watch stays bound with no task waiting."""


@dataclass
class Answer:
    message: dict | None = None
    """The agent's message (as ``message.sent`` carries it), or None."""
    failed: bool = False
    """The agent said it could not answer (``agent.reply_failed``)."""


@dataclass(eq=False)
class Waiter:
    chat_id: str
    agent_id: str
    heard: list[dict] = field(default_factory=list)
    failed: bool = False
    news: asyncio.Event = field(default_factory=asyncio.Event)

    def hear(self, event: EventEnvelope) -> None:
        if event.type == "agent.reply_failed":
            self.failed = True
        else:
            self.heard.append(event.payload["message"])
        self.news.set()

    def answer(self, after_seq: int) -> Answer | None:
        for message in self.heard:
            if message["seq"] > after_seq:
                return Answer(message=message)
        return Answer(failed=True) if self.failed else None


Reader = Callable[[int], Awaitable[list[dict]]]
"""Reads the chat's messages after a ``seq`` (the fallback when the watch is away)."""


class ReplyWatch:
    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._waiters: dict[str, set[Waiter]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._idle_seconds = idle_seconds
        self._idle_since = time.monotonic()

    async def start(self, bus: EventBus | None) -> None:
        """Start watching (once; again after the bus was lost or the watch went idle);
        waits until bound. The caller registers its waiter (``expect``) before it next
        awaits, so the watch does not go idle in between."""
        self._idle_since = time.monotonic()
        if self._task is not None and not self._task.done() and self._stop.is_set():
            with contextlib.suppress(Exception):  # it is ending as idle: let it, then bind
                await self._task
        if bus is None or (self._task is not None and not self._task.done()):
            return
        self._ready, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._watch(bus, self._stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def _watch(self, bus: EventBus, stop: asyncio.Event) -> None:
        async def ready() -> None:
            self._ready.set()

        idle = asyncio.create_task(self._end_when_idle(stop))
        try:
            await tail_events(bus, self._deliver, WATCHED, stop, on_ready=ready)
        except Exception as exc:  # the waiting tasks read the chat until it is back
            log.warning("the A2A reply watch lost the bus: %s", type(exc).__name__)
        finally:
            idle.cancel()

    async def _end_when_idle(self, stop: asyncio.Event) -> None:
        """End the watch once no task has waited for ``idle_seconds``."""
        while not stop.is_set():
            await asyncio.sleep(self._idle_seconds / 4)
            if not self._waiters and time.monotonic() - self._idle_since >= self._idle_seconds:
                stop.set()

    async def _deliver(self, event: EventEnvelope) -> None:
        if event.type == "message.sent":
            chat_id, sender = event.payload["message"]["chat_id"], event.payload["message"]["from"]
        else:
            chat_id, sender = event.payload.get("chat_id"), event.payload.get("agent_id")
        for waiter in self._waiters.get(chat_id, ()):
            if waiter.agent_id == sender:
                waiter.hear(event)

    @contextlib.contextmanager
    def expect(self, chat_id: str, agent_id: str):
        """A waiter for ``agent_id``'s next words in ``chat_id``, registered until left."""
        waiter = Waiter(chat_id, agent_id)
        self._waiters[chat_id].add(waiter)
        try:
            yield waiter
        finally:
            self._waiters[chat_id].discard(waiter)
            if not self._waiters[chat_id]:
                del self._waiters[chat_id]
            self._idle_since = time.monotonic()

    async def wait(
        self, waiter: Waiter, after_seq: int, timeout: float, read: Reader, every: float = 3.0
    ) -> Answer:
        """The agent's first message after ``after_seq``, or its failure; an empty
        ``Answer`` after ``timeout`` seconds. Reads the chat every ``every`` seconds while
        the watch is away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (answer := waiter.answer(after_seq)) is None:
            left = deadline - loop.time()
            if left <= 0:
                return Answer()
            waiter.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.news.wait(), min(left, every))
            if waiter.answer(after_seq) is None and not self.watching:
                waiter.heard += [m for m in await read(after_seq) if m["from"] == waiter.agent_id]
        return answer

    @property
    def watching(self) -> bool:
        """The watch is bound and running (else the waiting tasks read the chat)."""
        return self._ready.is_set() and self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
