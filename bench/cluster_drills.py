"""``DRILLS=cluster make drills``: the fault drills on the cluster topology (cli/cluster.py).

Two APIs behind HAProxy, two workers, three RabbitMQ nodes with quorum queues, FerretDB
with ``--telemetry=disable`` (the stack's own), in a folder of their own on free ports.
Fifty agents listen on their streams (through the load balancer) in ten group chats
while the drill's posts go in, and one fault happens:

(a) ``api-sigkill``: SIGKILL the API process that holds the most streams, start it again;
(b) ``rabbitmq-node-sigkill``: SIGKILL one RabbitMQ node, bring it back;
(c) ``worker-sigkill``: SIGKILL one worker every few seconds while the other polls;
(d) ``rolling-restart``: stop and start every API, worker and RabbitMQ node, one at a
    time, each back and ready before the next goes.

After each, what ``make drills`` checks (stored once, no ``seq`` gap, every recipient
served after de-duplication by ``event_id``, duplicates counted, no 500), and how long a
fault's work took to resume elsewhere: from the fault to the first delivery of a message
accepted after it (``resumed``), and for the API kill, from the kill to each of its
streams open again on the other process (``streams_back``), p50 and max.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx

from bench import client_limits
from bench.drills import Drill, Society, _reap, console, run_drill
from cli.cluster import NODES, REPLICAS, Cluster, ClusterPorts

LISTENERS, CHATS = 50, 10


def _p50_max(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "max": None, "n": 0}
    return {
        "p50": round(statistics.median(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
        "each": [round(v, 2) for v in values],
    }


def resumed(society: Society, drill: Drill) -> list[float]:
    """For each fault: seconds until a message posted after it (its request began after the
    fault) reached a reader."""
    arrivals = {}
    for listener in society.listeners.values():
        for event_id, at in listener.arrived.items():
            arrivals[event_id] = min(at, arrivals.get(event_id, at))
    out = []
    for struck in drill.fault_times:
        after = [
            arrivals[f"message.sent/{a['message_id']}"]
            for a in drill.accepted.values()
            if a.get("at", 0) > struck and f"message.sent/{a['message_id']}" in arrivals
        ]
        if after:
            out.append(min(after) - struck)
    return out


async def streams_by_api(cluster: Cluster) -> list[int]:
    counts = []
    for port in cluster.ports.apis:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            text = (await c.get("/metrics")).text
        line = next(x for x in text.splitlines() if x.startswith("agora_streams_open "))
        counts.append(int(float(line.split()[1])))
    return counts


async def _kill(cluster: Cluster, drill: Drill, name: str) -> None:
    await asyncio.to_thread(cluster.kill, name)
    _reap()
    drill.faults += 1
    drill.fault_times.append(time.monotonic())


async def kill_api(cluster: Cluster, society: Society, drill: Drill, down_for: float) -> None:
    await asyncio.sleep(2.0)
    counts = await streams_by_api(cluster)
    name = f"api-{counts.index(max(counts)) + 1}"
    drill.report["streams_on_killed_api"] = max(counts)
    held = {a for a, listener in society.listeners.items() if listener.connected}
    await _kill(cluster, drill, name)
    await asyncio.sleep(down_for)
    await asyncio.to_thread(cluster.start, name)
    struck = drill.fault_times[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every stream is open again somewhere
        if sum(await streams_by_api(cluster)) >= len(society.listeners):
            break
        await asyncio.sleep(0.5)
    back = [
        min(t for t in listener.connected if t > struck) - struck
        for a, listener in society.listeners.items()
        if a in held and any(t > struck for t in listener.connected)
    ]
    drill.report["streams_back"] = _p50_max(back)


async def kill_node(cluster: Cluster, drill: Drill, down_for: float) -> None:
    await asyncio.sleep(2.0)
    await _kill(cluster, drill, "rabbitmq-2")
    await asyncio.sleep(down_for)
    await asyncio.to_thread(cluster.start, "rabbitmq-2")


async def kill_worker(cluster: Cluster, drill: Drill, every: float, kills: int) -> None:
    """SIGKILL worker-1 ``kills`` times, ``every`` seconds apart (the first after one),
    starting it again each time; worker-2 polls throughout."""
    await asyncio.sleep(1.0)
    for _ in range(kills):
        await _kill(cluster, drill, "worker-1")
        await asyncio.to_thread(cluster.start, "worker-1")  # back once it polls
        await asyncio.sleep(every)


async def roll(cluster: Cluster, drill: Drill) -> None:
    await asyncio.sleep(2.0)
    for name in (
        *(f"api-{i}" for i in range(1, REPLICAS + 1)),
        *(f"worker-{i}" for i in range(1, REPLICAS + 1)),
        *(f"rabbitmq-{i}" for i in range(1, NODES + 1)),
    ):
        await asyncio.to_thread(cluster.stop, name)
        _reap()
        drill.faults += 1
        drill.fault_times.append(time.monotonic())
        await asyncio.to_thread(cluster.start, name)


async def run_cluster(size: dict, home: Path, result: dict) -> None:
    cluster = Cluster(home / "cluster", ClusterPorts.free(), with_ui=False)
    console.print(f"starting the cluster in {cluster.home}")
    try:
        await asyncio.to_thread(cluster.up)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cluster.ports.api}",
            timeout=60,
            limits=client_limits(64),
        ) as api:
            society = Society(cluster.stack, api)
            members = [await society.introduce(f"C{i}") for i in range(LISTENERS)]
            per = LISTENERS // CHATS
            for c in range(CHATS):
                await society.group(*members[per * c : per * c + per])
            await asyncio.sleep(2.0)  # the streams are open
            n = size["messages"]
            down = size["down_for"]

            async def api_fault(drill: Drill, _done: asyncio.Event) -> None:
                await kill_api(cluster, society, drill, down)

            async def node_fault(drill: Drill, _done: asyncio.Event) -> None:
                await kill_node(cluster, drill, down)

            async def worker_fault(drill: Drill, _done: asyncio.Event) -> None:
                await kill_worker(cluster, drill, size["kill_every"], size["worker_kills"])

            async def rolling(drill: Drill, _done: asyncio.Event) -> None:
                await roll(cluster, drill)

            drills = []
            for name, fault in (
                ("api-sigkill", api_fault),
                ("rabbitmq-node-sigkill", node_fault),
                ("worker-sigkill", worker_fault),
                ("rolling-restart", rolling),
            ):
                drill = await run_drill(
                    f"cluster-{name}", cluster.stack, society, n, fault, through_fault=True
                )
                drill.report["resumed"] = _p50_max(resumed(society, drill))
                console.print({"resumed": drill.report["resumed"]})
                drills.append(drill)
            society.stop.set()
            await asyncio.gather(*society.tasks, return_exceptions=True)
        result["cluster"] = {
            "listeners": LISTENERS,
            "chats": CHATS,
            "drills": {d.name: d.report for d in drills},
        }
    finally:
        await asyncio.to_thread(cluster.down)
        _reap()
