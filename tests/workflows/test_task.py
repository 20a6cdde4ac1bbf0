"""TaskWorkflow under a killed worker, and the task events in the parties' inboxes."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

from bus import EventBus, consume
from models.events import EventEnvelope
from persistence import Database, LedgerRepository
from tests.conftest import eventually
from tests.helpers import in_seconds, introduce, json_of, value, worker_process


async def _ready_to_accept(api, poster, worker, skill: str) -> str:
    body = {"title": "count", "reward": 50, "skills_required": [skill], "deadline": in_seconds(600)}
    task = (await api.post("/v1/tasks", json=body, headers=poster.headers)).json()
    url = f"/v1/tasks/{task['task_id']}"
    assert (await api.post(f"{url}/bids", json={"price": 30}, headers=worker.headers)).is_success
    assert (
        await api.post(f"{url}/assign", json={"agent_id": worker.agent_id}, headers=poster.headers)
    ).is_success
    assert (
        await api.post(f"{url}/submit", json={"result": "42"}, headers=worker.headers)
    ).is_success
    return task["task_id"]


async def test_killing_the_worker_during_settlement_loses_and_duplicates_no_token(
    api_only, admin, settings, database: Database
):
    """Each acceptance is cut by a SIGKILL of the worker at a different moment (as the
    update arrives, during the payment, after it); a new worker finishes the saga."""
    api = api_only
    delays = (0.0, 0.05, 0.3)

    async def accept_and_kill(task_id: str, delay: float, proc) -> asyncio.Task:
        accept = asyncio.create_task(
            api.post(f"/v1/tasks/{task_id}/accept", headers=poster.headers)
        )
        await asyncio.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return accept

    with worker_process(settings) as proc:
        skill = f"counting_{uuid.uuid4().hex[:6]}"
        await api.post("/v1/skills", json={"name": skill}, headers=admin)
        poster = await introduce(api, admin, "Payer")
        worker = await introduce(api, admin, "Doer", available_resources=[{"name": skill}])
        await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 150}, headers=admin)
        tasks = [await _ready_to_accept(api, poster, worker, skill) for _ in delays]
        pending = await accept_and_kill(tasks[0], delays[0], proc)
    for index, task_id in enumerate(tasks):
        with worker_process(settings) as proc:
            url = f"/v1/tasks/{task_id}"
            answer = await pending
            if answer.status_code != 200:  # the accept never reached the workflow: again
                again = await api.post(f"{url}/accept", headers=poster.headers)
                assert again.status_code in (200, 409), again.text
            await eventually(
                lambda u=url: json_of(api.get(u, headers=poster.headers)),
                lambda t: t["status"] == "settled",
                timeout=60,
            )
            if index + 1 < len(tasks):
                pending = await accept_and_kill(tasks[index + 1], delays[index + 1], proc)

    ledger = LedgerRepository(database)
    for task_id in tasks:
        moves = await database.db["transactions"].find({"task_id": task_id}).to_list(None)
        assert sorted(m["kind"] for m in moves) == ["escrow", "payment", "refund"]
        assert await ledger.balance(f"escrow:{task_id}") == 0
    assert await ledger.balance(f"agent:{worker.agent_id}") == 90
    assert await ledger.balance(f"agent:{poster.agent_id}") == 60
    totals = await ledger.balances()
    assert sum(totals.values()) == 0 and min(v for k, v in totals.items() if k != "mint") >= 0


async def test_task_events_reach_the_parties_inboxes(api, admin, bus: EventBus):
    skill = f"tasting_{uuid.uuid4().hex[:6]}"
    await api.post("/v1/skills", json={"name": skill}, headers=admin)
    poster = await introduce(api, admin, "Host")
    worker = await introduce(api, admin, "Guest", available_resources=[{"name": skill}])
    seen: dict[str, list[str]] = {poster.agent_id: [], worker.agent_id: []}

    def collector(agent_id: str):
        async def on_event(event: EventEnvelope) -> None:
            if event.type.startswith("task."):
                seen[agent_id].append(event.type)

        return on_event

    cancels = [
        await consume(
            bus.connection,
            bus.topology.inbox_queue(agent_id),
            collector(agent_id),
            dead_letter_exchange=bus.topology.dead_letters,
        )
        for agent_id in seen
    ]
    await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 50}, headers=admin)
    task_id = await _ready_to_accept(api, poster, worker, skill)
    await api.post(f"/v1/tasks/{task_id}/accept", headers=poster.headers)
    everything = [
        "task.posted",
        "task.bid_placed",
        "task.assigned",
        "task.submitted",
        "task.accepted",
        "task.settled",
    ]
    await eventually(
        lambda: value(seen),
        lambda s: (
            set(everything) <= set(s[poster.agent_id])
            and set(everything[1:]) <= set(s[worker.agent_id])
        ),
        timeout=30,
    )
    for cancel in cancels:
        await cancel()
