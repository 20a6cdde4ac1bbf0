"""``make bench-cluster``: the scale figures on the cluster topology (cli/cluster.py).

    make bench-cluster                 # quick size
    BENCH_SIZE=full make bench-cluster

Starts a cluster of its own (two APIs behind HAProxy, two workers, three RabbitMQ nodes
with quorum queues; FerretDB with ``--telemetry=disable``; a temporary folder, free
ports, every part on 127.0.0.1), then
measures in one run: Temporal's raw updates across 20 workflows (the ceiling of posts, as
in ``make bench``), and Agora's messages figure (messages per second through the load
balancer into 20 group chats and out to every listener's stream, and the delivery
latency at 50 messages per second offered) twice: with one API and one worker (the second
of each stopped, HAProxy sending everything to the first), then with two of each. Prints
both beside each other with their ratio and writes ``bench/results/<time>-cluster-<size>.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.progress import Progress
from rich.table import Table

from bench.__main__ import SIZES, agora, console, temporal_signals
from cli.cluster import REPLICAS, Cluster, ClusterPorts
from cli.stack import PROJECT_ROOT
from core.settings import Settings

# the bench is the load: the per-caller limits stay out of its way
UNLIMITED = {
    "AGORA_RATE_PER_TOKEN_PER_SECOND": "100000",
    "AGORA_RATE_BURST_PER_TOKEN": "100000",
    "AGORA_MESSAGES_PER_AGENT_PER_MINUTE": "100000000",
    "AGORA_MESSAGE_BURST_PER_AGENT": "100000",
}


async def serving_apis(cluster: Cluster, want: int) -> None:
    """Wait until ``want`` API processes answer, and HAProxy has seen it: its checks run
    every second, and two in a row mark a server up or down."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = await asyncio.to_thread(lambda: [p for p in cluster.ports.apis if _answers(p)])
        if len(up) == want:
            await asyncio.sleep(3)
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the balancer did not settle on {want} API processes")


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def figures(result: dict) -> dict:
    offered = result["offered_50_per_second"]
    return {
        "messages_per_second": result["messages_per_second_to_streams"],
        "delivery_p50_ms": result["latency_p50_ms"],
        "delivery_p99_ms": result["latency_p99_ms"],
        "offered_50_delivery_p50_ms": offered["latency_p50_ms"],
        "offered_50_delivery_p99_ms": offered["latency_p99_ms"],
        "deliveries": f"{result['deliveries']} / {result['expected_deliveries']}",
        "stages_at_50_offered_ms": result["offered_delivery_stages_ms"],
    }


async def run(size: str) -> dict:
    n = SIZES[size]
    home = Path(tempfile.mkdtemp(prefix="agora-bench-cluster-"))
    cluster = Cluster(home, ClusterPorts.free(), with_ui=False, settings=UNLIMITED)
    console.print(f"starting a cluster of its own in {home}")
    try:
        await asyncio.to_thread(cluster.up)
        env = cluster.env()
        settings = Settings(
            mongodb_uri=env["AGORA_MONGODB_URI"],
            amqp_url=env["AGORA_AMQP_URL"],
            temporal_address=env["AGORA_TEMPORAL_ADDRESS"],
        )
        passes = {}
        with Progress(console=console) as progress:
            raw = await temporal_signals(settings, n["signals"])
            for name in (f"api-{REPLICAS}", f"worker-{REPLICAS}"):
                await asyncio.to_thread(cluster.stop, name)
            await serving_apis(cluster, 1)
            one = await agora(env, n["messages"], n["offered"], 1, progress, senders=n["senders"])
            passes["one_api_one_worker"] = figures(one)
            for name in (f"worker-{REPLICAS}", f"api-{REPLICAS}"):
                await asyncio.to_thread(cluster.start, name)
            await serving_apis(cluster, 2)
            two = await agora(env, n["messages"], n["offered"], 1, progress, senders=n["senders"])
            passes["two_apis_two_workers"] = figures(two)
    finally:
        await asyncio.to_thread(cluster.down)
    a, b = passes["one_api_one_worker"], passes["two_apis_two_workers"]
    return {
        "date": datetime.now(UTC).isoformat(),
        "size": size,
        "cores": os.cpu_count(),
        "machine": platform.platform(),
        "raw_updates_20_workflows_per_second": raw[
            "updates_with_batched_activity_20_workflows_per_second"
        ],
        "raw_update_round_trip_p99_ms": raw["update_round_trip_p99_ms"],
        **passes,
        "ratio_two_to_one": {
            "messages_per_second": b["messages_per_second"] / a["messages_per_second"],
            "offered_50_delivery_p99": b["offered_50_delivery_p99_ms"]
            / a["offered_50_delivery_p99_ms"],
        },
        "command": f"BENCH_SIZE={size} make bench-cluster",
    }


def print_table(result: dict) -> None:
    a, b = result["one_api_one_worker"], result["two_apis_two_workers"]
    table = Table(
        "figure",
        "1 API + 1 worker",
        "2 APIs + 2 workers",
        "ratio",
        title=f"Agora on the cluster ({result['size']}, {result['cores']} cores; raw Temporal "
        f"updates, 20 workflows: {result['raw_updates_20_workflows_per_second']:.0f}/s)",
    )
    ratio = result["ratio_two_to_one"]
    table.add_row(
        "messages/s, LB to 2 streams each, 20 chats",
        f"{a['messages_per_second']:.2f}",
        f"{b['messages_per_second']:.2f}",
        f"{ratio['messages_per_second']:.2f}",
    )
    table.add_row(
        "  POST to delivery p50 / p99 ms, 40 in flight",
        f"{a['delivery_p50_ms']:.0f} / {a['delivery_p99_ms']:.0f}",
        f"{b['delivery_p50_ms']:.0f} / {b['delivery_p99_ms']:.0f}",
        "",
    )
    table.add_row(
        "at 50/s offered: delivery p50 / p99 ms",
        f"{a['offered_50_delivery_p50_ms']:.0f} / {a['offered_50_delivery_p99_ms']:.0f}",
        f"{b['offered_50_delivery_p50_ms']:.0f} / {b['offered_50_delivery_p99_ms']:.0f}",
        f"{ratio['offered_50_delivery_p99']:.2f} (p99)",
    )
    table.add_row("delivered / expected", a["deliveries"], b["deliveries"], "")
    console.print(table)


async def main() -> None:
    size = os.environ.get("BENCH_SIZE", "quick")
    result = await run(size)
    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-cluster-{size}.json"
    path.write_text(json.dumps(result, indent=2))
    print_table(result)
    console.print(f"written to {path}\nreproduce: {result['command']}")


if __name__ == "__main__":
    asyncio.run(main())
