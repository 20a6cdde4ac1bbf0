"""How a long-running Agora process (the API, the worker) runs Python: its event loop and
its garbage collector. Called once from each entry point, never from a library or a test
(a test process builds many apps, and what ``settle_heap`` freezes is never collected)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

YOUNG_COLLECTION_EVERY = 20_000
"""Allocations between two young collections (Python's default is 700). Under load the
worker and the API allocate a few thousand objects a message; at the default they
collected young objects many times a second, and the older generations often enough
that a full collection, a stop of the whole process, came every few seconds."""


def settle_heap() -> None:
    """Move what start-up built (modules, classes, routes, settings: most of the heap) out
    of the collector's sight, and collect young objects less often. A full collection
    then walks what the process made since, not the whole import graph: each full
    collection pauses every request and workflow task in the process."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run`` on uvloop (as uvicorn runs the API): its loop costs the worker's
    event loop, which every activity, publish and workflow activation passes through,
    less CPU than asyncio's own."""
    asyncio.run(main(), loop_factory=uvloop.new_event_loop)
