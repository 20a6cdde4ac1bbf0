"""A steady load, and hosted rooms, on a running stack: for comparing two commits in one
window, where ``make bench``'s figures move between runs as the machine's speed does.

    make up && python -m bench.steady load 30 50    # 30 s at 50 posts a second offered
    make up && python -m bench.steady hosted 3      # three hosted round-robin rooms
    make up && python -m bench.steady intro 300     # 300 introductions, 8 clients
    make up && python -m bench.steady turn          # one hosted turn, step by step

``load`` posts into 20 group chats of three (one sender, two listeners on their
streams), offered at a fixed rate whatever the answers do, once the stack is idle; it
prints the delivery p50 / p95 / p99, the same p50 and the slowest by second of sending
(where a periodic stall shows), the CPU per message by process, and per message the
worker's workflow tasks, activities and local activities by type (the worker's SDK
metrics, ``AGORA_WORKER_METRICS_PORT``). ``hosted`` runs the bench's
``agora_hosted_round_robin`` (4 hosted agents, 40 turns) that many times. ``turn`` runs
one such room and prints a turn from its middle as the chat's and its agents' history
events, merged, in ms from one post's acceptance to the next's.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid

import httpx
from temporalio.api.enums.v1 import EventType

from bench import client_limits
from bench.__main__ import (
    idle,
    messages_on_stream,
    pct,
    post_timed,
    register_operators,
    stack_pids,
)
from bench.peer import agora_hosted_round_robin
from bench.profile import tree_cpu_seconds
from cli.stack import PROJECT_ROOT, Stack
from core.names import agent_workflow_id, chat_workflow_id
from core.settings import Settings
from core.temporal import connect_temporal

TASKS = re.compile(
    r"temporal_(workflow_task_execution_latency|activity_execution_latency"
    r"|local_activity_execution_latency)_(count|sum)\{(.*)\} (\S+)"
)


async def sdk_tasks(port: str) -> dict[tuple, float]:
    """The worker's task counts and summed durations (ms), by kind and type."""
    found: dict[tuple, float] = {}
    async with httpx.AsyncClient() as metrics:
        text = (await metrics.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if m := TASKS.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3)))
            kind = m.group(1).replace("_execution_latency", "")
            types = labels.get("workflow_type", ""), labels.get("activity_type", "")
            key = (kind, *types, m.group(2))
            found[key] = found.get(key, 0.0) + float(m.group(4))
    return found


async def load(env: dict[str, str], seconds: int, rate: int) -> None:
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    base, run = env["AGORA_API_URL"], uuid.uuid4().hex[:6]
    limits = client_limits(200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as api:
        agents = []
        for i in range(60):
            r = await api.post(
                "/v1/agents", json={"agent_id": f"s{i}-{run}", "name": f"S{i}"}, headers=admin
            )
            agents.append((r.json()["agent_id"], {"Authorization": f"Bearer {r.json()['token']}"}))
        chats = []
        for c in range(20):
            members = agents[3 * c : 3 * c + 3]  # the first posts, the other two listen
            r = await api.post(
                "/v1/chats",
                json={"type": "group", "participants": [m[0] for m in members[1:]]},
                headers=members[0][1],
            )
            chats.append((r.json()["chat_id"], members))
    sent: dict[str, float] = {}
    started: float | None = None
    latencies: list[float] = []
    stop = asyncio.Event()
    ws_base = base.replace("http", "ws", 1)

    by_second: dict[int, list[float]] = {}

    async def listen(agent) -> None:
        async for key in messages_on_stream(ws_base, agent, stop):
            if key in sent:
                latencies.append(time.perf_counter() - sent[key])
                if started is not None:
                    second = int(sent[key] - started)
                    by_second.setdefault(second, []).append(latencies[-1])

    listeners = [asyncio.create_task(listen(x)) for _, members in chats for x in members[1:]]
    await asyncio.sleep(2)
    await idle()
    codes: dict[int, int] = {}
    n = seconds * rate
    port = env.get("AGORA_WORKER_METRICS_PORT", "9464")
    # a fresh client: connections idle through the wait are closed by the server
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as api:

        async def offer(i: int) -> None:
            _, r = await post_timed(api, chats, i, f"o{i}-{run}", sent)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1

        tasks_before = await sdk_tasks(port)
        cpu_before, started = tree_cpu_seconds(stack_pids()), time.perf_counter()
        posts = []
        for i in range(n):
            posts.append(asyncio.create_task(offer(i)))
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
        await asyncio.gather(*posts)
        for _ in range(100):
            if len(latencies) >= 2 * n:
                break
            await asyncio.sleep(0.1)
        cpu_after, elapsed = tree_cpu_seconds(stack_pids()), time.perf_counter() - started
        tasks_after = await sdk_tasks(port)
    stop.set()
    await asyncio.gather(*listeners, return_exceptions=True)
    print(f"{n} posts at {rate}/s: answers {codes}, delivered {len(latencies)} of {2 * n}")
    print(
        f"delivery p50 / p95 / p99 ms: {pct(latencies, 0.5) * 1000:.0f} / "
        f"{pct(latencies, 0.95) * 1000:.0f} / {pct(latencies, 0.99) * 1000:.0f}"
    )
    print(
        "by second of sending, delivery p50 / slowest ms: "
        + "  ".join(
            f"{t}: {pct(v, 0.5) * 1000:.0f} / {max(v) * 1000:.0f}"
            for t, v in sorted(by_second.items())
        )
    )
    spent(n, "message", elapsed, (cpu_before, cpu_after), (tasks_before, tasks_after))


def spent(n: int, unit: str, elapsed: float, cpu: tuple, tasks: tuple) -> None:
    """The CPU by process and the worker's tasks by type, per ``unit``, between two readings."""
    (cpu_before, cpu_after), (tasks_before, tasks_after) = cpu, tasks
    used = {k: cpu_after[k] - cpu_before.get(k, cpu_after[k]) for k in cpu_after}
    print(
        f"CPU: {sum(used.values()) / elapsed:.2f} cores; ms a {unit}: "
        + ", ".join(f"{k} {v * 1000 / n:.1f}" for k, v in used.items())
    )
    for key in sorted(tasks_after):
        count = tasks_after[key] - tasks_before.get(key, 0.0)
        if key[3] != "count" or count <= 0:
            continue
        total = tasks_after[key[:3] + ("sum",)] - tasks_before.get(key[:3] + ("sum",), 0.0)
        kind, workflow_type, activity_type = key[:3]
        print(
            f"  {kind:16} {workflow_type:14} {activity_type:14} {count / n:5.2f} a {unit}, "
            f"mean {total / count:.1f} ms"
        )


async def introductions(env: dict[str, str], n: int) -> None:
    """``n`` agents introduced by 8 concurrent operators, one request each at a time (the
    bench's figure), with the CPU and the worker's tasks an introduction costs."""
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run, port = uuid.uuid4().hex[:6], env.get("AGORA_WORKER_METRICS_PORT", "9464")
    async with httpx.AsyncClient(base_url=env["AGORA_API_URL"], timeout=120) as api:
        operators = await register_operators(api, admin, run)
        queue, latencies = list(range(n)), []

        async def client(headers: dict) -> None:
            while queue:
                i = queue.pop()
                sent = time.perf_counter()
                r = await api.post(
                    "/v1/agents", json={"agent_id": f"i{i}-{run}", "name": f"I{i}"}, headers=headers
                )
                r.raise_for_status()
                latencies.append(time.perf_counter() - sent)

        await idle()
        tasks_before = await sdk_tasks(port)
        cpu_before, started = tree_cpu_seconds(stack_pids()), time.perf_counter()
        await asyncio.gather(*(client(op) for op in operators))
        cpu_after, elapsed = tree_cpu_seconds(stack_pids()), time.perf_counter() - started
        tasks_after = await sdk_tasks(port)
    print(
        f"{n} introductions, 8 clients: {n / elapsed:.1f} a second; answer p50 / p90 / p99 "
        f"/ max ms: {pct(latencies, 0.5) * 1000:.0f} / {pct(latencies, 0.9) * 1000:.0f} / "
        f"{pct(latencies, 0.99) * 1000:.0f} / {max(latencies) * 1000:.0f}"
    )
    spent(n, "life", elapsed, (cpu_before, cpu_after), (tasks_before, tasks_after))


async def hosted(env: dict[str, str], rooms: int) -> None:
    """``rooms`` hosted round-robin rooms one after another, then the CPU and the
    worker's tasks a turn cost over all of them (set-up included: a room's four
    introductions and its chat are a small part of its 40 turns)."""
    port = env.get("AGORA_WORKER_METRICS_PORT", "9464")
    await idle()
    tasks_before = await sdk_tasks(port)
    cpu_before, started = tree_cpu_seconds(stack_pids()), time.perf_counter()
    for _ in range(rooms):
        r = await agora_hosted_round_robin(env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"], 40)
        print(
            f"hosted round robin: {r['turns_per_second']:.2f} turns/s, overhead p50 / p99 "
            f"{r['overhead_p50_ms']} / {r['overhead_p99_ms']} ms, "
            f"strict rotation {r['strict_rotation']}"
        )
    cpu_after, elapsed = tree_cpu_seconds(stack_pids()), time.perf_counter() - started
    tasks_after = await sdk_tasks(port)
    spent(40 * rooms, "turn", elapsed, (cpu_before, cpu_after), (tasks_before, tasks_after))


async def turn(env: dict[str, str]) -> None:
    """One hosted room, then a turn from its middle, step by step, from the histories."""
    await idle()
    room = await agora_hosted_round_robin(env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"], 40)
    client = await connect_temporal(Settings(temporal_address=env["AGORA_TEMPORAL_ADDRESS"]))
    steps: list[tuple] = []
    for who, workflow_id in [("chat", chat_workflow_id(room["chat_id"]))] + [
        (host, agent_workflow_id(host)) for host in room["hosts"]
    ]:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for e in history.events:
            what = ""
            if e.HasField("activity_task_scheduled_event_attributes"):
                what = e.activity_task_scheduled_event_attributes.activity_type.name
            elif e.HasField("workflow_execution_signaled_event_attributes"):
                what = e.workflow_execution_signaled_event_attributes.signal_name
            elif e.HasField("workflow_execution_update_accepted_event_attributes"):
                what = e.workflow_execution_update_accepted_event_attributes.accepted_request
                what = what.input.name
            elif e.HasField("marker_recorded_event_attributes"):
                data = e.marker_recorded_event_attributes.details.get("data")
                what = json.loads(data.payloads[0].data).get("activity_type", "") if data else ""
            kind = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
            steps.append((e.event_time.ToDatetime(), who, kind, what))
    steps.sort()
    posts = [i for i, step in enumerate(steps) if step[3] == "post_message"]
    if len(posts) < 4:
        raise SystemExit("the room took too few turns to show one")
    first, last = posts[len(posts) // 2], posts[len(posts) // 2 + 1]
    origin = steps[first][0]
    print(
        f"room {room['chat_id']}: {room['turns_per_second']:.2f} turns/s, overhead p50 "
        f"{room['overhead_p50_ms']} ms; one turn, in ms from the post before it:"
    )
    for at, who, kind, what in steps[first : last + 1]:
        print(f"{(at - origin).total_seconds() * 1000:7.1f}  {who:14} {kind:36} {what}")


def main(argv: list[str]) -> None:
    env = Stack.load(PROJECT_ROOT / ".agora").env()
    if argv[:1] == ["load"]:
        seconds, rate = (int(a) for a in (argv[1:] + ["30", "50"])[:2])
        asyncio.run(load(env, seconds, rate))
    elif argv[:1] == ["intro"]:
        asyncio.run(introductions(env, int(argv[1]) if len(argv) > 1 else 300))
    elif argv[:1] == ["turn"]:
        asyncio.run(turn(env))
    elif argv[:1] == ["hosted"]:
        asyncio.run(hosted(env, int(argv[1]) if len(argv) > 1 else 3))
    else:
        raise SystemExit(__doc__)
    print(f"reproduce: make up && python -m bench.steady {' '.join(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
