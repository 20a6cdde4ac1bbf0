"""``make bench``: raw ceilings and Agora's figures from the same run, side by side.

    make bench                 # quick size
    BENCH_SIZE=full make bench # and the second pass on a filled store
    BENCH_SECOND_PASS=1 make bench  # the second pass at the quick size

Against the local stack (``make up``): Temporal signals per second into one workflow,
RabbitMQ publish-with-confirms and consume-with-acks, MongoDB (FerretDB) inserts per
second; then Agora end to end (messages through the API into 20 group chats and out to
every recipient's stream, POST-to-delivery latency), the floor hand-over, and agents
introduced per second; each Agora figure with the raw ceiling it is bounded by. Prints a
table and writes ``bench/results/<time>.json``; never a test assertion. The stack is
``make up``'s: FerretDB runs with ``--telemetry=disable`` there (``cli/stack.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import websockets
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from temporalio import activity, workflow
from temporalio.worker import Worker

from bench import client_limits
from bench.console import console_figures
from bench.profile import tree_cpu_seconds
from bench.protocols import a2a_round_trips, doors
from cli.stack import PROJECT_ROOT, Stack
from core.settings import Settings
from core.temporal import connect_temporal

console = Console()
SIZES = {
    "smoke": {  # does every part run (seconds, not figures)
        "signals": 100,
        "bus": 200,
        "inserts": 200,
        "messages": 40,
        "offered": 20,
        "handovers": 3,
        "agents": 50,
        "turns": 8,
        "introductions": 40,
        "senders": 1,
    },
    "quick": {
        "signals": 500,
        "bus": 2000,
        "inserts": 2000,
        "messages": 200,
        "offered": 500,  # 10 s at 50/s: p99 of 1,000 deliveries, not the third-slowest of 300
        "handovers": 10,
        "agents": 500,
        "turns": 40,
        "introductions": 300,
        "senders": 1,  # 18 posts an agent: within its quota
    },
    "full": {
        "signals": 5000,
        "bus": 20000,
        "inserts": 20000,
        "messages": 2000,
        "offered": 1500,
        "handovers": 50,
        "agents": 10_000,
        "turns": 200,
        "introductions": 1000,
        "senders": 3,  # 175 posts a chat in about a minute: 58 an agent, within its quota
    },
}


@workflow.defn(sandboxed=False)
class SignalSink:
    """Counts signals; the raw Temporal ceiling for one workflow."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, expected: int) -> int:
        await workflow.wait_condition(lambda: self.count >= expected)
        return self.count

    @workflow.signal
    def hit(self) -> None:
        self.count += 1


@activity.defn(name="bench_record_batch")
async def record_batch(size: int) -> int:
    """Stands for a store step: one call per batch of signals."""
    return size


@workflow.defn(sandboxed=False)
class BatchSink:
    """Signals batched into one activity call each time round: Agora's chat pattern, bare."""

    def __init__(self) -> None:
        self.pending = 0
        self.done = 0

    @workflow.run
    async def run(self, expected: int) -> int:
        while self.done < expected:
            await workflow.wait_condition(lambda: self.pending > 0)
            batch, self.pending = self.pending, 0
            self.done += await workflow.execute_activity(
                record_batch, batch, start_to_close_timeout=timedelta(seconds=30)
            )
        return self.done

    @workflow.signal
    def hit(self) -> None:
        self.pending += 1


@workflow.defn(sandboxed=False)
class UpdateSink:
    """Updates accepted at once, batched into one activity call each time round: the
    bare shape of a chat's posts (an update) and its deliver lane (one activity a batch)."""

    def __init__(self) -> None:
        self.pending = 0
        self.done = 0
        self.accepted = 0

    @workflow.run
    async def run(self, expected: int) -> int:
        while self.done < expected:
            await workflow.wait_condition(lambda: self.pending > 0)
            batch, self.pending = self.pending, 0
            self.done += await workflow.execute_activity(
                record_batch, batch, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.done

    @workflow.update
    def hit(self) -> int:
        self.pending += 1
        self.accepted += 1
        return self.accepted


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def temporal_signals(settings: Settings, n: int) -> dict:
    client = await connect_temporal(settings)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SignalSink, BatchSink, UpdateSink],
        activities=[record_batch],
    ):
        handle = await client.start_workflow(
            SignalSink.run, n, id=f"bench/{queue}", task_queue=queue
        )
        started = time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def one() -> None:
            async with sem:
                await handle.signal(SignalSink.hit)

        await asyncio.gather(*(one() for _ in range(n)))
        await handle.result()
        elapsed = time.perf_counter() - started
        per = n // 20
        sinks = [
            await client.start_workflow(
                BatchSink.run, per, id=f"bench/{queue}/{i}", task_queue=queue
            )
            for i in range(20)
        ]

        async def batched(i: int) -> None:
            async with sem:
                await sinks[i % 20].signal(BatchSink.hit)

        started = time.perf_counter()
        await asyncio.gather(*(batched(i) for i in range(per * 20)))
        await asyncio.gather(*(sink.result() for sink in sinks))
        batched_elapsed = time.perf_counter() - started

        # updates, 40 in flight like the messages figure: the ceiling of posts
        sinks = [
            await client.start_workflow(
                UpdateSink.run, per, id=f"bench/{queue}/u{i}", task_queue=queue
            )
            for i in range(20)
        ]
        in_flight = asyncio.Semaphore(40)
        round_trips: list[float] = []

        async def update(i: int) -> None:
            async with in_flight:
                began = time.perf_counter()
                await sinks[i % 20].execute_update(UpdateSink.hit)
                round_trips.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(update(i) for i in range(per * 20)))
        updates_elapsed = time.perf_counter() - started
        await asyncio.gather(*(sink.result() for sink in sinks))
        at_50 = await bare_shape_at(client, queue, 50, min(per, 25))
    return {
        "signals_per_second": n / elapsed,
        "n": n,
        "signals_with_batched_activity_20_workflows_per_second": per * 20 / batched_elapsed,
        "updates_with_batched_activity_20_workflows_per_second": per * 20 / updates_elapsed,
        "update_round_trip_p50_ms": pct(round_trips, 0.5) * 1000,
        "update_round_trip_p99_ms": pct(round_trips, 0.99) * 1000,
        "updates_at_50_per_second_offered": at_50,
    }


async def bare_shape_at(client, queue: str, rate: int, per: int) -> dict:
    """The bare shape of a chat's posts (an update, one activity a batch, 20 workflows)
    offered at ``rate`` a second, as the messages at 50 a second are: the update's round
    trip, and what Temporal and this process (client and worker) spend on each. At a rate
    each workflow takes one update at a time there is no batch to share: this is the
    floor of Agora's own CPU a message at that rate, for the Temporal part."""
    sinks = [
        await client.start_workflow(UpdateSink.run, per, id=f"bench/{queue}/r{i}", task_queue=queue)
        for i in range(20)
    ]
    await asyncio.sleep(2)  # their first workflow tasks are not this figure's
    pids = {"temporal": stack_pids()["temporal"]}
    round_trips: list[float] = []

    async def update(i: int) -> None:
        began = time.perf_counter()
        await sinks[i % 20].execute_update(UpdateSink.hit)
        round_trips.append(time.perf_counter() - began)

    before, mine = tree_cpu_seconds(pids), time.process_time()
    started, posts = time.perf_counter(), []
    for i in range(per * 20):
        posts.append(asyncio.create_task(update(i)))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    await asyncio.gather(*posts)
    await asyncio.gather(*(sink.result() for sink in sinks))
    after, mine = tree_cpu_seconds(pids), time.process_time() - mine
    n = per * 20
    return {
        "updates": n,
        "round_trip_p50_ms": pct(round_trips, 0.5) * 1000,
        "round_trip_p99_ms": pct(round_trips, 0.99) * 1000,
        "temporal_cpu_ms_per_update": (after["temporal"] - before["temporal"]) * 1000 / n,
        "client_and_worker_cpu_ms_per_update": mine * 1000 / n,
    }


async def rabbitmq(settings: Settings, n: int) -> dict:
    import aio_pika

    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(exclusive=True)
    body = b"x" * 256
    started = time.perf_counter()
    window = 200
    for start in range(0, n, window):
        batch = range(min(window, n - start))
        await asyncio.gather(
            *(
                channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
                for _ in batch
            )
        )
    published = time.perf_counter() - started
    got = 0
    done = asyncio.Event()
    started = time.perf_counter()

    async def on(message) -> None:
        nonlocal got
        await message.ack()
        got += 1
        if got >= n:
            done.set()

    await channel.set_qos(prefetch_count=500)
    tag = await queue.consume(on)
    await done.wait()
    consumed = time.perf_counter() - started
    await queue.cancel(tag)

    # one message at a time, publish (confirmed) to a consumer: the broker's own latency
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def on_one(message) -> None:
        await message.ack()
        arrived.put_nowait(time.perf_counter())

    await queue.consume(on_one)
    latencies = []
    for _ in range(200):
        began = time.perf_counter()
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
        latencies.append(await arrived.get() - began)
    await connection.close()
    return {
        "publish_confirmed_per_second": n / published,
        "consume_acked_per_second": n / consumed,
        "publish_to_consumer_p50_ms": pct(latencies, 0.5) * 1000,
        "publish_to_consumer_p99_ms": pct(latencies, 0.99) * 1000,
    }


async def mongodb(settings: Settings, n: int) -> dict:
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(settings.mongodb_uri)
    collection = client[f"bench_{uuid.uuid4().hex[:8]}"]["raw"]
    started = time.perf_counter()
    for start in range(0, n, 100):
        await collection.insert_many(
            [{"_id": f"{i}", "v": "x" * 256} for i in range(start, min(n, start + 100))]
        )
    elapsed = time.perf_counter() - started
    await client.drop_database(collection.database.name)

    # keyed writes and reads as the collection grows: FerretDB v1 filters by _id with a
    # scan, so these fall as the documents grow (why the hot path reads no key)
    keyed = {}
    sem = asyncio.Semaphore(20)
    collection = client[f"bench_{uuid.uuid4().hex[:8]}"]["keyed"]
    have = 0
    for size in (1_000, 10_000, 100_000):
        while have < size:
            batch = min(1000, size - have)
            await collection.insert_many(
                [{"_id": f"k{i}", "v": "x" * 256, "n": 0} for i in range(have, have + batch)]
            )
            have += batch
        keys = [f"k{(i * 7919) % size}" for i in range(400)]

        async def upsert(key: str) -> None:
            async with sem:
                await collection.update_one({"_id": key}, {"$inc": {"n": 1}}, upsert=True)

        async def find(key: str) -> None:
            async with sem:
                await collection.find_one({"_id": key})

        began = time.perf_counter()
        await asyncio.gather(*(upsert(k) for k in keys))
        upserts = len(keys) / (time.perf_counter() - began)
        began = time.perf_counter()
        await asyncio.gather(*(find(k) for k in keys))
        finds = len(keys) / (time.perf_counter() - began)
        keyed[str(size)] = {"upserts_per_second": upserts, "finds_per_second": finds}
    await client.drop_database(collection.database.name)
    await client.close()
    return {
        "inserts_per_second": n / elapsed,
        "batch": 100,
        "keyed_by_documents": keyed,
        "keyed_concurrency": 20,
    }


class Stages:
    """Where a delivery's time goes, per message: the API's own time, the chat workflow's
    update round trip (the API's ``Server-Timing``), accepted to on the bus (the deliver
    lane's publish, through the broker to a consumer of the topic exchange), and on the
    bus to the reader's stream (the inbox queue, the API's consumer, the WebSocket)."""

    def __init__(self) -> None:
        self.post: dict[str, tuple[float, float, float]] = {}  # key -> sent, answered, update
        self.bus: dict[str, float] = {}
        self.stream: dict[str, list[float]] = {}

    def accepted(self, key: str, sent: float, response: httpx.Response) -> None:
        timing = response.headers.get("server-timing", "")
        update = float(timing.split("dur=", 1)[1]) / 1000 if "dur=" in timing else float("nan")
        self.post[key] = (sent, time.perf_counter(), update)

    def on_stream(self, key: str) -> None:
        self.stream.setdefault(key, []).append(time.perf_counter())

    async def tail_bus(self, env: dict[str, str]):
        import aio_pika

        connection = await aio_pika.connect_robust(env["AGORA_AMQP_URL"])
        channel = await connection.channel()
        prefix = env.get("AGORA_BUS_PREFIX", "agora")
        exchange = await channel.get_exchange(f"{prefix}.events")
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="message.sent")

        async def seen(message) -> None:
            async with message.process():
                key = json.loads(message.body)["payload"]["message"]["content"]
                self.bus.setdefault(key, time.perf_counter())

        await queue.consume(seen)
        return connection.close

    def split(self, keys) -> dict:
        api, update, to_bus, to_stream = [], [], [], []
        for key in keys:
            if key not in self.post:
                continue
            sent, answered, took = self.post[key]
            update.append(took)
            api.append(answered - sent - took)
            if key in self.bus:
                to_bus.append(self.bus[key] - answered)
                to_stream += [t - self.bus[key] for t in self.stream.get(key, [])]
        return {
            name: {"p50": pct(values, 0.5) * 1000, "p99": pct(values, 0.99) * 1000}
            for name, values in (
                ("api", api),
                ("update_round_trip", update),
                ("accepted_to_bus", to_bus),
                ("bus_to_stream", to_stream),
            )
        }


def stack_pids() -> dict[str, int]:
    """The processes of ``make up`` and this bench client, by name."""
    stack = Stack.load(PROJECT_ROOT / ".agora")
    names = ("api", "worker", "temporal", "ferretdb", "postgres", "rabbitmq")
    pids = {name: stack.owned_pid(name) for name in names}
    return {name: pid for name, pid in pids.items() if pid} | {"bench": os.getpid()}


async def idle(threshold: float = 0.15, most: int = 30) -> None:
    """Until the stack uses less than ``threshold`` cores for a second (at most ``most``
    seconds): each figure is measured on a stack that has finished the work before it."""
    for _ in range(most):
        before = tree_cpu_seconds(stack_pids())
        await asyncio.sleep(1)
        after = tree_cpu_seconds(stack_pids())
        if sum(after[k] - before.get(k, after[k]) for k in after) < threshold:
            return


async def messages_on_stream(ws_base: str, agent: tuple[str, dict], stop: asyncio.Event):
    """The content of each ``message.sent`` on the agent's WebSocket stream, until
    ``stop`` is set (``agent``: its id and its auth headers)."""
    url = f"{ws_base}/v1/agents/{agent[0]}/stream"
    async with websockets.connect(url, additional_headers=agent[1]) as ws:
        while not stop.is_set():
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except TimeoutError:
                continue
            if event["type"] == "message.sent":
                yield event["payload"]["message"]["content"]


def speaker(chats: list[tuple], i: int, senders: int = 1) -> tuple[str, tuple[str, dict]]:
    """The chat of the ``i``-th post and who posts it: the chats in turn, and in each chat
    the first ``senders`` of its members in turn (``chats``: each chat's id and members).
    More than one sender a chat keeps each agent within the per-agent message quota
    (``AGORA_MESSAGES_PER_AGENT_PER_MINUTE``) at the full size; a post reaches the other
    members' streams."""
    chat_id, members = chats[i % len(chats)]
    return chat_id, members[(i // len(chats)) % senders]


async def post_timed(
    api: httpx.AsyncClient,
    chats: list[tuple],
    i: int,
    content: str,
    at: dict[str, float],
    senders: int = 1,
):
    """Post ``content`` as the ``i``-th post (``speaker``), noting when in ``at``; the
    start and the answer."""
    chat_id, sender = speaker(chats, i, senders)
    at[content] = started = time.perf_counter()
    answer = await api.post(
        f"/v1/chats/{chat_id}/messages", json={"content": content}, headers=sender[1]
    )
    return started, answer


async def agora(
    env: dict[str, str],
    n: int,
    offered: int,
    handovers: int,
    progress: Progress,
    senders: int = 1,
) -> dict:
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    base = env["AGORA_API_URL"]
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=client_limits(200)) as api:
        task = progress.add_task("introducing agents", total=60)
        started = time.perf_counter()
        agents = []
        for i in range(60):
            r = await api.post(
                "/v1/agents", json={"agent_id": f"b{i}-{run}", "name": f"B{i}"}, headers=admin
            )
            agents.append((r.json()["agent_id"], {"Authorization": f"Bearer {r.json()['token']}"}))
            progress.advance(task)
        introduced = 60 / (time.perf_counter() - started)
        chats = []
        for c in range(20):  # 20 groups of three: the first posts (the first ``senders``)
            members = agents[3 * c : 3 * c + 3]
            r = await api.post(
                "/v1/chats",
                json={"type": "group", "participants": [m[0] for m in members[1:]]},
                headers=members[0][1],
            )
            chats.append((r.json()["chat_id"], members))
        listening = [m for _, members in chats for m in members[1:]]
        if senders > 1:  # a sender hears the other senders' posts
            listening += [members[0] for _, members in chats]
        sent_at: dict[str, float] = {}
        stages = Stages()
        stop_tail = await stages.tail_bus(env)
        latencies: list[float] = []
        offered_at: dict[str, float] = {}
        offered_latencies: list[float] = []
        # deliveries to wait for: two a post, then two an accepted post once the answers
        # are in (a post the API refuses, such as a 429 of the per-agent message quota at
        # the full size, is never delivered: counted in the answers, not waited for)
        expected = {"closed": n * 2, "offered": offered * 2}
        answers: dict[str, collections.Counter] = {
            "closed": collections.Counter(),
            "offered": collections.Counter(),
        }
        done, offered_done, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        ws_base = base.replace("http", "ws", 1)

        def check() -> None:
            if len(latencies) >= expected["closed"]:
                done.set()
            if len(offered_latencies) >= expected["offered"]:
                offered_done.set()

        def answered(phase: str) -> None:
            expected[phase] = 2 * answers[phase][201]
            check()

        async def listen(agent) -> None:
            async for key in messages_on_stream(ws_base, agent, stop):
                stages.on_stream(key)
                if key in sent_at:
                    latencies.append(time.perf_counter() - sent_at[key])
                elif key in offered_at:
                    offered_latencies.append(time.perf_counter() - offered_at[key])
                check()

        listeners = [asyncio.create_task(listen(x)) for x in listening]
        await asyncio.sleep(1.0)
        task = progress.add_task("messages through the API to streams", total=n)
        sem = asyncio.Semaphore(40)

        async def post(i: int) -> None:
            chat_id, sender = speaker(chats, i, senders)
            key = f"m{i}-{run}"
            async with sem:
                sent_at[key] = time.perf_counter()
                r = await api.post(
                    f"/v1/chats/{chat_id}/messages", json={"content": key}, headers=sender[1]
                )
                stages.accepted(key, sent_at[key], r)
                answers["closed"][r.status_code] += 1
            progress.advance(task)

        started = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(n)))
        answered("closed")
        with contextlib.suppress(TimeoutError):  # reported as delivered / expected
            await asyncio.wait_for(done.wait(), timeout=120)
        elapsed = time.perf_counter() - started

        # open loop: 50 messages per second offered, whatever the answers do, once the
        # stack has done what the closed loop left it (its store lanes, the trailing
        # notices and the agents' flushes): those landed in this window before
        await idle()
        task = progress.add_task(f"{offered} messages offered at 50/s", total=offered)

        async def offer(i: int) -> None:
            key = f"o{i}-{run}"
            sent, r = await post_timed(api, chats, i, key, offered_at, senders)
            stages.accepted(key, sent, r)
            answers["offered"][r.status_code] += 1
            progress.advance(task)

        posts = []
        cpu_before, cpu_started = tree_cpu_seconds(stack_pids()), time.perf_counter()
        for i in range(offered):
            posts.append(asyncio.create_task(offer(i)))
            # on a schedule, not 20 ms after each post left (which offered a little less)
            await asyncio.sleep(max(0.0, cpu_started + (i + 1) / 50 - time.perf_counter()))
        await asyncio.gather(*posts)
        answered("offered")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(offered_done.wait(), timeout=180)
        cpu_after, cpu_elapsed = tree_cpu_seconds(stack_pids()), time.perf_counter() - cpu_started
        cpu_per_message = {
            name: (cpu_after[name] - cpu_before.get(name, cpu_after[name])) * 1000 / offered
            for name in cpu_after
        }
        cpu_busy = sum(cpu_after[n] - cpu_before.get(n, cpu_after[n]) for n in cpu_after)
        stop.set()
        await asyncio.gather(*listeners, return_exceptions=True)
        await stop_tail()

        # the floor hand-over: A yields, B's stream sees chat.floor_granted (once the
        # load before it is done: its chats' store lanes and their agents' flushes)
        await idle()
        a, b = agents[0], agents[1]
        r = await api.post(
            "/v1/chats",
            json={"type": "group", "participants": [b[0]], "speaker_policy": "fifo"},
            headers=a[1],
        )
        floor_chat = r.json()["chat_id"]
        gaps: list[float] = []
        task = progress.add_task("floor hand-overs", total=handovers)
        async with websockets.connect(
            f"{ws_base}/v1/agents/{b[0]}/stream", additional_headers=b[1]
        ) as ws:
            for _ in range(handovers):
                await api.post(f"/v1/chats/{floor_chat}/floor", json={}, headers=a[1])
                await api.post(f"/v1/chats/{floor_chat}/floor", json={}, headers=b[1])
                yielded = time.perf_counter()
                await api.delete(f"/v1/chats/{floor_chat}/floor", headers=a[1])
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if (
                        event["type"] == "chat.floor_granted"
                        and event["payload"].get("agent_id") == b[0]
                    ):
                        gaps.append(time.perf_counter() - yielded)
                        break
                await api.delete(f"/v1/chats/{floor_chat}/floor", headers=b[1])
                progress.advance(task)
    return {
        "agents_introduced_per_second": introduced,
        "messages_per_second_to_streams": len(latencies) / 2 / elapsed,
        "deliveries": len(latencies),
        "expected_deliveries": expected["closed"],
        "answers": {str(k): v for k, v in sorted(answers["closed"].items())},
        "latency_p50_ms": pct(latencies, 0.5) * 1000,
        "latency_p95_ms": pct(latencies, 0.95) * 1000,
        "latency_p99_ms": pct(latencies, 0.99) * 1000,
        "offered_50_per_second": {
            "messages": offered,
            "deliveries": len(offered_latencies),
            "expected_deliveries": expected["offered"],
            "answers": {str(k): v for k, v in sorted(answers["offered"].items())},
            "latency_p50_ms": pct(offered_latencies, 0.5) * 1000,
            "latency_p95_ms": pct(offered_latencies, 0.95) * 1000,
            "latency_p99_ms": pct(offered_latencies, 0.99) * 1000,
        },
        "delivery_stages_ms": stages.split(sent_at),
        "offered_delivery_stages_ms": stages.split(offered_at),
        "offered_cpu_ms_per_message": cpu_per_message,
        "offered_cpu_cores_busy": cpu_busy / cpu_elapsed,
        "floor_handover_p50_ms": pct(gaps, 0.5) * 1000,
        "floor_handover_p99_ms": pct(gaps, 0.99) * 1000,
        "floor_handover_mean_ms": statistics.fmean(gaps) * 1000 if gaps else None,
    }


async def register_operators(api: httpx.AsyncClient, admin: dict, run: str) -> list[dict]:
    """Eight operators, each with its own token (one token is rate-limited to 20
    requests a second by design): the headers of each."""
    operators = []
    for k in range(8):
        operator = {"operator_id": f"op{k}-{run}", "name": f"Operator {k}"}
        r = await api.post("/v1/operators", json=operator, headers=admin)
        r.raise_for_status()
        operators.append({"Authorization": f"Bearer {r.json()['token']}"})
    return operators


async def introductions(env: dict[str, str], n: int, progress: Progress) -> dict:
    """Agents introduced through the API: ``n`` by 8 concurrent clients one at a time,
    each an operator with its own token (one token is rate-limited to 20 requests a
    second by design), then ``n`` more by ``POST /v1/agents:batch`` in batches of 100
    (2 in flight)."""
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run = uuid.uuid4().hex[:6]
    task = progress.add_task(f"introductions, {n} one by one and {n} in batches", total=2 * n)
    async with httpx.AsyncClient(base_url=env["AGORA_API_URL"], timeout=120) as api:
        operators = await register_operators(api, admin, run)
        queue = list(range(n))

        async def client(headers: dict) -> None:
            while queue:
                i = queue.pop()
                r = await api.post(
                    "/v1/agents", json={"agent_id": f"i{i}-{run}", "name": f"I{i}"}, headers=headers
                )
                r.raise_for_status()
                progress.advance(task)

        started = time.perf_counter()
        await asyncio.gather(*(client(op) for op in operators))
        one_by_one = n / (time.perf_counter() - started)
        await idle()  # the lives just introduced finish setting up first
        batches = [
            [{"agent_id": f"j{i}-{run}", "name": f"J{i}"} for i in range(k, min(n, k + 100))]
            for k in range(0, n, 100)
        ]
        gate = asyncio.Semaphore(2)

        async def send(batch: list[dict]) -> None:
            async with gate:
                r = await api.post("/v1/agents:batch", json={"agents": batch}, headers=admin)
                r.raise_for_status()
                progress.advance(task, len(batch))

        started = time.perf_counter()
        await asyncio.gather(*(send(b) for b in batches))
        batched = n / (time.perf_counter() - started)
    return {"agents": n, "per_second_8_clients": one_by_one, "per_second_batches_of_100": batched}


async def scale(
    stack: Stack, settings: Settings, count: int, progress: Progress, then=None
) -> dict:
    """The worker's resident memory before and after ``count`` live agent workflows;
    ``then`` (a coroutine function) runs while they live, before they are ended."""
    from pymongo import AsyncMongoClient

    from bench.scale import WAVE, grow, resident_kib
    from core.names import agent_workflow_id

    pid = stack.owned_pid("worker")
    if pid is None:
        return {"skipped": "the worker of 'make up' is not running"}
    client = await connect_temporal(settings)
    mongo = AsyncMongoClient(settings.mongodb_uri)
    database = mongo[settings.mongodb_db]
    before = resident_kib(pid)
    starting = progress.add_task(f"starting {count} agent lives", total=count)
    storing = progress.add_task("their manifests stored", total=count)
    started = time.perf_counter()
    ids = await grow(
        client,
        database,
        settings.task_queue,
        settings.llm_task_queue,
        count,
        on_started=lambda: progress.advance(starting),
        on_stored=lambda n: progress.update(storing, completed=n),
    )
    elapsed = time.perf_counter() - started
    await asyncio.sleep(5)
    after = resident_kib(pid)
    stored = await database["agents"].count_documents({"_id": {"$in": ids}})
    meanwhile = await then() if then is not None else None
    # leave the stack as it was: these lives were only for the measurement
    task = progress.add_task("retiring them", total=count)
    sem = asyncio.Semaphore(50)

    async def end(agent_id: str) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(agent_workflow_id(agent_id)).terminate(
                    reason="bench: scale measurement over"
                )
        progress.advance(task)

    await asyncio.gather(*(end(i) for i in ids))
    await database["agents"].delete_many({"_id": {"$in": ids}})
    await database["credentials"].delete_many({"subject": {"$in": ids}, "role": "agent"})
    await database["accounts"].delete_many({"_id": {"$in": ids}})
    await mongo.close()
    return {
        "agents": count,
        "stored": stored,
        "started_and_stored_per_second": count / elapsed,
        "worker_rss_before_mib": before / 1024,
        "worker_rss_after_mib": after / 1024,
        "worker_rss_per_agent_kib": (after - before) / count,
        "workflow_cache": 1000,
        "started_in_waves_of": WAVE,
        "note": "the worker caches at most 1,000 workflow lives (the SDK default); "
        "the others wait in Temporal and replay when they get work",
        "meanwhile": meanwhile,
    }


async def fill_messages(settings: Settings, count: int, progress: Progress):
    """``count`` stored messages in filler chats (no workflows: the store as it is after a
    long life), and the coroutine that removes them."""
    from models.chats import Message, message_id_for
    from persistence import MessageRepository, open_database

    database = await open_database(settings)
    repository = MessageRepository(database)
    run = uuid.uuid4().hex[:6]
    task = progress.add_task(f"storing {count:,} filler messages", total=count)
    now = datetime.now(UTC)
    chats = [f"fill-{run}-{c}" for c in range(100)]
    for start in range(0, count, 500):
        batch = [
            Message(
                message_id=message_id_for(chats[i % 100], i // 100 + 1),
                chat_id=chats[i % 100],
                seq=i // 100 + 1,
                from_=f"filler-{i % 7}",
                timestamp=now,
                message_type="text",
                is_private=False,
                content=f"filler message {i} " + "x" * 120,
            )
            for i in range(start, min(count, start + 500))
        ]
        await repository.store(batch)
        progress.update(task, completed=start + len(batch))

    async def remove() -> None:
        for chat in chats:  # one chat at a time: FerretDB binds a parameter a document
            await database.db["messages"].delete_many({"chat_id": chat})
        await database.close()

    return remove


async def peer(env: dict[str, str], turns: int, progress: Progress) -> dict:
    from bench.peer import (
        agora_hosted_round_robin,
        agora_round_robin,
        autogen_available,
        autogen_round_robin,
    )

    task = progress.add_task(f"round-robin turn loops, {turns} turns", total=3)
    ours = await agora_round_robin(env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"], turns)
    progress.advance(task)
    await idle()
    hosted = await agora_hosted_round_robin(env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"], turns)
    progress.advance(task)
    if not autogen_available():
        note = "AutoGen is the optional bench extra: pip install -e '.[bench]'"
        return {"agora": ours, "hosted": hosted, "autogen": None, "note": note}
    theirs = await autogen_round_robin(turns)
    progress.advance(task)
    return {
        "agora": ours,
        "hosted": hosted,
        "autogen": theirs,
        "ratio_agora_to_autogen": ours["turns_per_second"] / theirs["turns_per_second"],
        "ratio_hosted_to_autogen": hosted["turns_per_second"] / theirs["turns_per_second"],
        "note": "AutoGen's RoundRobinGroupChat keeps the conversation in one process's "
        "memory and loses it on a crash; Agora stores every turn before answering",
    }


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


async def main() -> None:
    size = os.environ.get("BENCH_SIZE", "quick")
    n = SIZES[size]
    stack = Stack.load(PROJECT_ROOT / ".agora")
    env = stack.env()
    settings = Settings(
        mongodb_uri=env["AGORA_MONGODB_URI"],
        amqp_url=env["AGORA_AMQP_URL"],
        temporal_address=env["AGORA_TEMPORAL_ADDRESS"],
    )
    with Progress(console=console) as progress:
        raw = progress.add_task("raw ceilings", total=3)
        temporal = await temporal_signals(settings, n["signals"])
        progress.advance(raw)
        bus = await rabbitmq(settings, n["bus"])
        progress.advance(raw)
        mongo = await mongodb(settings, n["inserts"])
        progress.advance(raw)
        await idle()
        ours = await agora(
            env, n["messages"], n["offered"], n["handovers"], progress, senders=n["senders"]
        )
        await idle()
        turns = await peer(env, n["turns"], progress)
        await idle()
        intro = await introductions(env, n["introductions"], progress)
        shown = progress.add_task("the console in Chromium, a room of 10,000 messages", total=1)
        browser = await console_figures(env)
        progress.advance(shown)
        through = progress.add_task("a post through REST and MCP, a question through A2A", total=1)
        door = await doors(env)
        door["a2a"] = await a2a_round_trips(env)
        progress.advance(through)
        second = None
        if size == "full" or os.environ.get("BENCH_SECOND_PASS") == "1":
            # the same figures again on a store that has filled: 100,000 more messages
            # stored and the scale part's agents living (10,000 at full size), then both
            # removed (BENCH_SECOND_PASS=1 runs it at the quick size too)
            async def second_pass() -> dict:
                remove = await fill_messages(settings, 100_000, progress)
                try:
                    return await agora(
                        env,
                        n["messages"],
                        n["offered"],
                        n["handovers"],
                        progress,
                        senders=n["senders"],
                    )
                finally:
                    await remove()

            lives = await scale(stack, settings, n["agents"], progress, then=second_pass)
            second = lives.pop("meanwhile")
        else:
            lives = await scale(stack, settings, n["agents"], progress)
            lives.pop("meanwhile")
    ceiling = min(
        temporal["signals_per_second"],
        bus["publish_confirmed_per_second"],
        mongo["inserts_per_second"],
    )
    result = {
        "date": datetime.now(UTC).isoformat(),
        "size": size,
        "cores": os.cpu_count(),
        "machine": platform.platform(),
        "temporal": temporal,
        "rabbitmq": bus,
        "mongodb": mongo,
        "agora": ours,
        "peer": turns,
        "scale": lives,
        "introductions": intro,
        "console": browser,
        "doors": door,
        "second_pass_after_100k_messages_and_10k_agents": second,
        "ratios": {
            "messages_vs_temporal_signals": ours["messages_per_second_to_streams"]
            / temporal["signals_per_second"],
            "messages_vs_batched_signals_20_workflows": ours["messages_per_second_to_streams"]
            / temporal["signals_with_batched_activity_20_workflows_per_second"],
            "messages_vs_lowest_raw_ceiling": ours["messages_per_second_to_streams"] / ceiling,
            "messages_vs_batched_updates_20_workflows": ours["messages_per_second_to_streams"]
            / temporal["updates_with_batched_activity_20_workflows_per_second"],
        },
        "command": f"make up && BENCH_SIZE={size} make bench",
    }
    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{size}.json"
    path.write_text(json.dumps(result, indent=2))
    table = Table("figure", "value", title=f"Agora bench ({size}, {os.cpu_count()} cores)")
    rows = [
        ("Temporal signals/s into one workflow (raw)", temporal["signals_per_second"]),
        (
            "Temporal signals/s, 20 workflows, one activity per batch (raw)",
            temporal["signals_with_batched_activity_20_workflows_per_second"],
        ),
        ("RabbitMQ publish with confirms/s (raw)", bus["publish_confirmed_per_second"]),
        ("RabbitMQ consume with acks/s (raw)", bus["consume_acked_per_second"]),
        (
            "Temporal updates/s, 20 workflows, one activity per batch (raw)",
            temporal["updates_with_batched_activity_20_workflows_per_second"],
        ),
        (
            "  update round trip p50 / p99 ms (raw, 40 in flight)",
            "{update_round_trip_p50_ms:.0f} / {update_round_trip_p99_ms:.0f}".format(**temporal),
        ),
        (
            "  the same shape at 50/s offered: round trip p50 / p99 ms; CPU ms an update: "
            "Temporal, client and worker (raw)",
            "{round_trip_p50_ms:.0f} / {round_trip_p99_ms:.0f}; {temporal_cpu_ms_per_update:.1f}, "
            "{client_and_worker_cpu_ms_per_update:.1f}".format(
                **temporal["updates_at_50_per_second_offered"]
            ),
        ),
        (
            "RabbitMQ publish to consumer p50 / p99 ms (raw, one at a time)",
            f"{bus['publish_to_consumer_p50_ms']:.1f} / {bus['publish_to_consumer_p99_ms']:.1f}",
        ),
        ("MongoDB (FerretDB) inserts/s, batches of 100 (raw)", mongo["inserts_per_second"]),
        *[
            (
                f"  keyed upserts / finds per s at {int(size):,} documents (raw)",
                f"{v['upserts_per_second']:,.0f} / {v['finds_per_second']:,.0f}",
            )
            for size, v in mongo["keyed_by_documents"].items()
        ],
        (
            "Agora messages/s, API to 2 streams each, 20 chats",
            ours["messages_per_second_to_streams"],
        ),
        (
            "  POST to delivery p50 / p95 / p99 ms",
            f"{ours['latency_p50_ms']:.0f} / "
            f"{ours['latency_p95_ms']:.0f} / {ours['latency_p99_ms']:.0f}",
        ),
        ("  delivered / expected", f"{ours['deliveries']} / {ours['expected_deliveries']}"),
        (
            "  answers to the posts (closed loop; at 50/s)",
            f"{ours['answers']}; {ours['offered_50_per_second']['answers']}",
        ),
        (
            "At 50 messages/s offered: delivery p50 / p95 / p99 ms",
            "{latency_p50_ms:.0f} / {latency_p95_ms:.0f} / {latency_p99_ms:.0f}".format(
                **ours["offered_50_per_second"]
            ),
        ),
        *[
            (
                f"  stage p50 / p99 ms at 50/s: {name.replace('_', ' ')}",
                f"{v['p50']:.0f} / {v['p99']:.0f}",
            )
            for name, v in ours["offered_delivery_stages_ms"].items()
        ],
        (f"  CPU cores busy at 50/s offered (of {os.cpu_count()})", ours["offered_cpu_cores_busy"]),
        (
            "  CPU ms per message at 50/s, by process",
            ", ".join(
                f"{name} {ms:.1f}"
                for name, ms in sorted(
                    ours["offered_cpu_ms_per_message"].items(), key=lambda kv: -kv[1]
                )
            ),
        ),
        *(
            [
                (
                    "Second pass (after 100,000 messages, 10,000 agents): messages/s",
                    second["messages_per_second_to_streams"],
                ),
                (
                    "  second pass at 50/s offered: delivery p50 / p99 ms",
                    "{latency_p50_ms:.0f} / {latency_p99_ms:.0f}".format(
                        **second["offered_50_per_second"]
                    ),
                ),
            ]
            if second
            else []
        ),
        (
            "Floor hand-over p50 / p99 ms",
            f"{ours['floor_handover_p50_ms']:.0f} / {ours['floor_handover_p99_ms']:.0f}",
        ),
        ("Agents introduced/s, one client", ours["agents_introduced_per_second"]),
        ("Agents introduced/s, 8 concurrent clients (target ≥ 20)", intro["per_second_8_clients"]),
        (
            "Agents introduced/s, POST /v1/agents:batch of 100, 2 in flight",
            intro["per_second_batches_of_100"],
        ),
        *(
            [
                (
                    "Console first load: KB compressed (target ≤ 300) / requests",
                    f"{browser['first_load_bytes_compressed'] / 1000:.1f} / "
                    f"{browser['first_load_requests']}",
                ),
                (
                    "  first load to interactive sign-in, ms (target ≤ 1,000)",
                    browser["first_load_interactive_ms"],
                ),
                ("  sign-in to the Society view, ms", browser["sign_in_to_society_ms"]),
                (
                    f"  room of {browser['room_messages_stored']:,} messages: open ms / messages "
                    "loaded / KB",
                    f"{browser['room_open_ms']:.0f} / {browser['room_open_messages_loaded']} / "
                    f"{browser['room_open_bytes'] / 1000:.1f}",
                ),
                ("  one page back, ms", browser["room_page_back_ms"]),
            ]
            if "room_open_ms" in browser
            else [("Console", browser.get("note"))]
        ),
        (
            "Post to the reader's stream, p50 / p99 ms: REST",
            "{p50_ms:.0f} / {p99_ms:.0f}".format(**door["rest_post_to_reader_stream"]),
        ),
        (
            "  the same through MCP's post_message (mcp SDK client)",
            "{p50_ms:.0f} / {p99_ms:.0f}".format(**door["mcp_post_message_to_reader_stream"]),
        ),
        (
            "A question to a hosted agent until its answer, p50 / p99 ms: REST + stream",
            "{p50_ms:.0f} / {p99_ms:.0f}".format(
                **door["a2a"]["rest_post_to_hosted_reply_on_stream"]
            ),
        ),
        (
            "  the same as A2A SendMessage, blocking (a2a-sdk client)",
            "{p50_ms:.0f} / {p99_ms:.0f}".format(
                **door["a2a"]["a2a_send_message_to_completed_task"]
            ),
        ),
        (
            "Round-robin turns/s, 4 agents: Agora (stored, crash-proof)",
            turns["agora"]["turns_per_second"],
        ),
        (
            "  turn p50 / p99 ms (the chat's own timing)",
            f"{_ms(turns['agora']['turn_p50_ms'])} / {_ms(turns['agora']['turn_p99_ms'])}",
        ),
        (
            "Round-robin turns/s, 4 hosted agents by themselves (offline model)",
            turns["hosted"]["turns_per_second"],
        ),
        ("  strict rotation held", turns["hosted"]["strict_rotation"]),
        (
            "  turn overhead p50 / p99 ms (turn minus time in the model)",
            f"{_ms(turns['hosted']['overhead_p50_ms'])} / "
            f"{_ms(turns['hosted']['overhead_p99_ms'])}",
        ),
        (
            "Round-robin turns/s, 4 agents: AutoGen in memory (lost on a crash)",
            turns["autogen"]["turns_per_second"] if turns["autogen"] else "not installed",
        ),
        ("  Agora ÷ AutoGen (API-driven)", turns.get("ratio_agora_to_autogen", "-")),
        ("  Agora ÷ AutoGen (hosted)", turns.get("ratio_hosted_to_autogen", "-")),
        (
            f"Worker RSS with {lives.get('agents', 0):,} live agents, MiB (before)",
            "{:,.0f} ({:,.0f})".format(
                lives.get("worker_rss_after_mib", 0), lives.get("worker_rss_before_mib", 0)
            ),
        ),
        ("  per agent, KiB", lives.get("worker_rss_per_agent_kib", "-")),
        (
            "  agent lives started and stored/s (Temporal direct)",
            lives.get("started_and_stored_per_second", "-"),
        ),
        (
            "Agora messages/s ÷ Temporal updates/s, 20 workflows (target ≥ 0.5)",
            result["ratios"]["messages_vs_batched_updates_20_workflows"],
        ),
        ("Agora messages/s ÷ Temporal signals/s", result["ratios"]["messages_vs_temporal_signals"]),
        (
            "Agora messages/s ÷ lowest raw ceiling",
            result["ratios"]["messages_vs_lowest_raw_ceiling"],
        ),
    ]
    for name, value in rows:
        if isinstance(value, float):
            value = f"{value:,.4f}" if abs(value) < 0.1 else f"{value:,.2f}"
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"written to {path}\nreproduce: {result['command']}")


if __name__ == "__main__":
    asyncio.run(main())
