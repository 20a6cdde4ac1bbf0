"""Scale: the worker's resident memory with many live agent workflows.

Starts ``count`` ``AgentWorkflow`` lives straight through Temporal (the API would add
its own request cost to every one; ``agents_introduced_per_second`` in the main bench
measures that path), on the stack's task queue, so the stack's own worker runs them:
each stores its manifest, credential and account and announces itself, then waits.
Reads the worker's VmRSS from ``/proc`` before and after.

The worker keeps at most ``max_cached_workflows`` lives in memory (the SDK's sticky
cache); the rest live in Temporal's history and are replayed when they get work. So the
figure per agent falls as the count grows past the cache: both are reported.

Lives start in waves smaller than that cache (``grow``): started all at once, 10,000
lives evict each other between their first activities and replay their histories over
and over, and fewer than 2 a second got stored.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from core.names import agent_workflow_id
from core.temporal import AGENT_ID, KIND, STATUS
from models.agents import AgentManifest, AgentStatus, PublicProfile
from models.workflow_io import AgentStart, AgentState
from workflows.agent import AgentWorkflow


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def live_agents(
    client: Client, task_queue: str, llm_task_queue: str, count: int, on_started=lambda: None
) -> list[str]:
    """Start ``count`` agent lives; returns their ids."""
    run = uuid.uuid4().hex[:6]
    ids = [f"s{i}-{run}" for i in range(count)]
    sem = asyncio.Semaphore(50)
    now = datetime.now(UTC)

    async def one(agent_id: str) -> None:
        manifest = AgentManifest(
            agent_id=agent_id,
            status=AgentStatus.ACTIVE,
            public_profile=PublicProfile(name=agent_id),
            last_updated=now,
            created_at=now,
        )
        state = AgentState(
            manifest=manifest,
            llm_task_queue=llm_task_queue,
            token_id=uuid.uuid4().hex,
            token_expires_at=now.replace(year=now.year + 1),
            offline_after_seconds=86_400,
        )
        async with sem:
            await client.start_workflow(
                AgentWorkflow.run,
                AgentStart(state=state),
                id=agent_workflow_id(agent_id),
                task_queue=task_queue,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(AGENT_ID, agent_id),
                        SearchAttributePair(STATUS, "active"),
                        SearchAttributePair(KIND, "agent"),
                    ]
                ),
            )
        on_started()

    await asyncio.gather(*(one(i) for i in ids))
    return ids


async def settled(database, ids: list[str], timeout: float, on_progress=lambda n: None) -> float:
    """Seconds until every agent's manifest is stored (its first work done)."""
    started = time.monotonic()
    prefix = ids[0].split("-")[-1]
    while time.monotonic() - started < timeout:
        stored = await database["agents"].count_documents({"_id": {"$regex": f"-{prefix}$"}})
        on_progress(stored)
        if stored >= len(ids):
            break
        await asyncio.sleep(1)
    return time.monotonic() - started


WAVE = 500
"""Lives started together; below the worker's workflow cache (1,000)."""


async def grow(
    client: Client,
    database,
    task_queue: str,
    llm_task_queue: str,
    count: int,
    on_started=lambda: None,
    on_stored=lambda n: None,
) -> list[str]:
    """Start ``count`` lives a wave at a time, each wave once the one before is stored;
    ``on_stored`` gets the running total. Returns every id."""
    ids: list[str] = []
    while len(ids) < count:
        wave = await live_agents(
            client, task_queue, llm_task_queue, min(WAVE, count - len(ids)), on_started
        )
        done = len(ids)
        await settled(
            database,
            wave,
            timeout=max(600, len(wave)),
            on_progress=lambda n, done=done: on_stored(done + n),
        )
        ids += wave
    return ids


async def curve(count: int, step: int = 1000) -> None:
    """``python -m bench.scale 10000``: start ``count`` lives on ``make up``'s stack and
    print the worker's resident memory each ``step`` stored manifests (the lives stay;
    ``make clean`` removes them)."""
    from pymongo import AsyncMongoClient

    from cli.stack import PROJECT_ROOT, Stack
    from core.settings import Settings
    from core.temporal import connect_temporal

    stack = Stack.load(PROJECT_ROOT / ".agora")
    env = stack.env()
    settings = Settings(
        mongodb_uri=env["AGORA_MONGODB_URI"], temporal_address=env["AGORA_TEMPORAL_ADDRESS"]
    )
    pid = stack.owned_pid("worker")
    if pid is None:
        raise SystemExit("make up first")
    client = await connect_temporal(settings)
    database = AsyncMongoClient(settings.mongodb_uri)[settings.mongodb_db]
    before = resident_kib(pid)
    print(f"worker RSS before: {before / 1024:.0f} MiB", flush=True)
    started = time.monotonic()
    marks = iter(range(step, count + step, step))
    mark = next(marks)

    def progress(stored: int) -> None:
        nonlocal mark
        while stored >= mark:
            rss = resident_kib(pid)
            per_agent = (rss - before) / mark
            elapsed = time.monotonic() - started
            print(
                f"{mark:>6} lives stored after {elapsed:5.0f} s: worker RSS "
                f"{rss / 1024:.0f} MiB, {per_agent:.0f} KiB per agent",
                flush=True,
            )
            mark = next(marks, 10**12)

    await grow(
        client, database, settings.task_queue, settings.llm_task_queue, count, on_stored=progress
    )


if __name__ == "__main__":
    import sys

    asyncio.run(curve(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
