"""``python -m workers``: connect once, run until SIGTERM or SIGINT, close in ``finally``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from bus import open_bus
from core.logging import configure_logging
from core.runtime import run, settle_heap
from core.settings import get_settings, secrets_of
from core.temporal import connect_temporal, metrics_runtime
from core.tracing import configure_tracing
from persistence import open_database
from workers.registry import build_workers, context_saver

log = logging.getLogger("agora.worker")


async def main() -> None:
    settings = get_settings()
    configure_logging(secrets=secrets_of(settings))
    configure_tracing("agora-worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    database = await open_database(settings)
    bus = await open_bus(settings)
    try:
        port = settings.worker_metrics_port
        client = await connect_temporal(settings, metrics_runtime(port) if port else None)
        if port:
            log.info("temporal sdk metrics on http://127.0.0.1:%s/metrics", port)
        contexts = context_saver(database, settings)
        async with contextlib.AsyncExitStack() as running:
            # last out: the hosted agents' contexts that wait are written once the
            # workers have finished the tasks in hand
            running.push_async_callback(contexts.close)
            for worker in build_workers(client, settings, database, bus, contexts=contexts):
                await running.enter_async_context(worker)
            log.info("worker running on %s and %s", settings.task_queue, settings.llm_task_queue)
            settle_heap()
            ready = settings.worker_ready_file
            if ready:
                ready.write_text(str(os.getpid()))
            try:
                await stop.wait()
            finally:
                if ready and ready.exists() and ready.read_text() == str(os.getpid()):
                    ready.unlink(missing_ok=True)
            log.info("worker stopping: finishing the tasks in hand")
    finally:
        await bus.close()
        await database.close()


if __name__ == "__main__":
    run(main)
