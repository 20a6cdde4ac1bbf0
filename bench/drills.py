"""``make drills``: fault drills and a long life, against a stack of their own.

The stack is ``cli.stack.Stack``: FerretDB runs there with ``--telemetry=disable`` on
127.0.0.1, like every service here; nothing calls outside the machine.

    make drills                  # full size: 2,000 messages per drill, 20,000 in the long chat
    DRILL_SIZE=ci make drills    # the reduced size the test suite runs (tests/drills)
    DRILLS=long make drills      # only the long life (DRILLS=faults: only the drills)
    DRILLS=cluster make drills   # the drills on the cluster topology (bench/cluster_drills.py)

The drills start their own stack (a temporary folder, free ports, the same services as
``make up``) so that they can kill and restart every part of it. Each drill posts its
messages into several group chats, every member listening on its WebSocket stream,
while one fault happens:

(a) the worker is killed with SIGKILL every few seconds and started again;
(b) RabbitMQ is stopped and started again;
(c) FerretDB (MongoDB) is stopped and started again;
(d) Temporal's dev server is stopped and started again on its database file.

A post is retried with its Idempotency-Key until it is accepted, as a client would.
After each drill: every accepted message is stored exactly once, ``seq`` has no gap,
every recipient received every message (after de-duplication by ``event_id``), and the
duplicates seen before de-duplication are counted. Every answer the API gave while the
dependency was down is counted by status: a 500 is a failure, a 503 the expected answer.

The long life then posts into one chat and tunes one agent's attention until both have
continued as new several times, and reports the largest history of any run against
Temporal's warning sizes (10,240 events, 10 MiB).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets
from rich.console import Console
from rich.table import Table

from bench import client_limits
from cli.stack import PROJECT_ROOT, Ports, Stack
from core.settings import Settings
from core.temporal import connect_temporal

console = Console()

SIZES = {
    "ci": {
        "messages": 200,
        "chats": 3,
        "long_messages": 400,
        "long_attention": 250,
        "updates_per_run": 100,
        "kill_every": 3.0,
        "down_for": 4.0,
        "worker_kills": 3,
    },
    "full": {
        "messages": 2000,
        "chats": 5,
        "long_messages": 20_000,
        "long_attention": 10_000,
        "updates_per_run": 1_500,
        "kill_every": 10.0,
        "down_for": 8.0,
        "worker_kills": 10,
    },
}
HISTORY_WARN_EVENTS = 10_240
HISTORY_WARN_BYTES = 10 * 1024 * 1024
RETRIED = {429, 502, 503, 504}


@dataclass
class Listener:
    """One agent's stream: every ``message.sent`` it got, duplicates included."""

    agent_id: str
    headers: dict[str, str]
    received: list[str] = field(default_factory=list)
    reconnects: int = 0
    arrived: dict[str, float] = field(default_factory=dict)
    """When each event first arrived (monotonic seconds)."""
    connected: list[float] = field(default_factory=list)
    """When each connection of the stream opened."""


@dataclass
class Drill:
    name: str
    accepted: dict[str, dict] = field(default_factory=dict)  # key -> {chat, seq, message_id}
    statuses: collections.Counter = field(default_factory=collections.Counter)
    while_down: collections.Counter = field(default_factory=collections.Counter)
    faults: int = 0
    seconds: float = 0.0
    report: dict = field(default_factory=dict)
    reasons: collections.Counter = field(default_factory=collections.Counter)
    """What each retried answer said (its status and detail), counted."""
    fault_times: list[float] = field(default_factory=list)
    """When each fault struck (monotonic seconds; the cluster drills measure from it)."""


class Society:
    """The agents and chats of a drill run, and the API client that drives them."""

    def __init__(self, stack: Stack, api: httpx.AsyncClient) -> None:
        self.stack = stack
        self.api = api
        self.admin = {"Authorization": f"Bearer {stack.admin_token}"}
        self.ws_base = stack.env()["AGORA_API_URL"].replace("http", "ws", 1)
        self.listeners: dict[str, Listener] = {}
        self.chats: dict[str, list[str]] = {}  # chat -> members
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def call(self, method: str, url: str, drill: Drill | None = None, **kw) -> httpx.Response:
        """One request, retried while the answer says 'try again' (or nothing answers)."""
        deadline = time.monotonic() + 600
        while True:
            try:
                response = await self.api.request(method, url, **kw)
                status = response.status_code
            except httpx.HTTPError:
                response, status = None, "no answer"
            if drill is not None:
                drill.statuses[status] += 1
                if response is not None and status in RETRIED:
                    drill.reasons[f"{status} {_reason(response)}"] += 1
            if response is not None and status not in RETRIED:
                return response
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {url}: still {status} after 10 minutes")
            await asyncio.sleep(0.5)

    async def introduce(self, name: str) -> Listener:
        agent_id = f"{name.lower()}-{uuid.uuid4().hex[:6]}"
        r = await self.call(
            "POST", "/v1/agents", json={"agent_id": agent_id, "name": name}, headers=self.admin
        )
        r.raise_for_status()
        listener = Listener(agent_id, {"Authorization": f"Bearer {r.json()['token']}"})
        self.listeners[agent_id] = listener
        self.tasks.append(asyncio.create_task(self.listen(listener)))
        return listener

    async def group(self, owner: Listener, *others: Listener) -> str:
        body = {"type": "group", "participants": [o.agent_id for o in others]}
        r = await self.call("POST", "/v1/chats", json=body, headers=owner.headers)
        r.raise_for_status()
        chat_id = r.json()["chat_id"]
        self.chats[chat_id] = [owner.agent_id, *(o.agent_id for o in others)]
        return chat_id

    async def listen(self, listener: Listener) -> None:
        url = f"{self.ws_base}/v1/agents/{listener.agent_id}/stream"
        while not self.stop.is_set():
            try:
                async with websockets.connect(
                    url, additional_headers=listener.headers, open_timeout=10
                ) as ws:
                    listener.connected.append(time.monotonic())
                    while not self.stop.is_set():
                        try:
                            event = json.loads(await asyncio.wait_for(ws.recv(), 1))
                        except TimeoutError:
                            continue
                        if event["type"] == "message.sent":
                            listener.received.append(event["event_id"])
                            listener.arrived.setdefault(event["event_id"], time.monotonic())
            except Exception:  # the API, the bus or the socket went away: come back
                listener.reconnects += 1
                await asyncio.sleep(0.5)

    async def post_all(
        self,
        drill: Drill,
        count: int,
        concurrency: int = 12,
        until: Callable[[], bool] | None = None,
    ) -> None:
        """``count`` messages round the chats, each member in turn, retried by key; with
        ``until``, more after those until it answers True (a fault that takes longer)."""
        numbers = itertools.count()
        chats = list(self.chats.items())

        async def lane() -> None:
            for i in numbers:
                if i >= count and (until is None or until()):
                    return
                chat_id, members = chats[i % len(chats)]
                sender = self.listeners[members[(i // len(chats)) % len(members)]]
                key = f"{drill.name}-{i}"
                began = time.monotonic()
                r = await self.call(
                    "POST",
                    f"/v1/chats/{chat_id}/messages",
                    drill,
                    json={"content": key},
                    headers=sender.headers | {"Idempotency-Key": key},
                )
                if r.status_code == 201:
                    drill.accepted[key] = {
                        "chat": chat_id,
                        "sender": sender.agent_id,
                        "at": began,
                        **r.json(),
                    }

        await asyncio.gather(*(lane() for _ in range(concurrency)))

    async def history(self, chat_id: str) -> list[dict]:
        reader = self.listeners[self.chats[chat_id][0]]
        items, after = [], 0
        while True:
            r = await self.call(
                "GET",
                f"/v1/chats/{chat_id}/messages",
                params={"after_seq": after, "limit": 500},
                headers=reader.headers,
            )
            page = r.json()
            items += page["items"]
            if page["next_after_seq"] is None:
                return items
            after = page["next_after_seq"]

    async def verify(self, drill: Drill, timeout: float = 300) -> dict:
        """Stored once, no seq gap, delivered to every recipient: waits for the laggards."""
        deadline = time.monotonic() + timeout
        while True:
            stored = {chat_id: await self.history(chat_id) for chat_id in self.chats}
            ours = [
                m
                for items in stored.values()
                for m in items
                if m["content"].startswith(f"{drill.name}-")
            ]
            expected = self._expected_deliveries(drill)
            missing = {a: ids - set(self.listeners[a].received) for a, ids in expected.items()}
            done = len(ours) >= len(drill.accepted) and not any(missing.values())
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        by_key = collections.Counter(m["content"] for m in ours)
        gaps = {c: _gaps([m["seq"] for m in items]) for c, items in stored.items()}
        seen = {
            a: [e for e in self.listeners[a].received if e in ids] for a, ids in expected.items()
        }
        return {
            "accepted": len(drill.accepted),
            "stored": len(ours),
            "stored_twice": sum(1 for n in by_key.values() if n > 1),
            "accepted_not_stored": len(set(drill.accepted) - set(by_key)),
            "stored_not_accepted": len(set(by_key) - set(drill.accepted)),
            "seq_gaps": sum(len(g) for g in gaps.values()),
            "answers_match_store": all(
                any(m["seq"] == a["seq"] and m["content"] == k for m in stored[a["chat"]])
                for k, a in drill.accepted.items()
            ),
            "deliveries_expected": sum(len(ids) for ids in expected.values()),
            "deliveries_missing": sum(len(m) for m in missing.values()),
            # which (the first few): the agent, and the event to look for in the logs
            "missing_examples": sorted(f"{a} {e}" for a, ids in missing.items() for e in ids)[:5],
            "duplicate_deliveries": sum(len(s) - len(set(s)) for s in seen.values()),
        }

    def _expected_deliveries(self, drill: Drill) -> dict[str, set[str]]:
        expected: dict[str, set[str]] = collections.defaultdict(set)
        for accepted in drill.accepted.values():
            for member in self.chats[accepted["chat"]]:
                if member != accepted["sender"]:
                    expected[member].add(f"message.sent/{accepted['message_id']}")
        return expected


def _reason(response: httpx.Response) -> str:
    """A retried answer's detail (HAProxy's own pages are HTML: named so)."""
    try:
        return str(response.json().get("detail", ""))[:80]
    except ValueError:
        return "(not JSON: the load balancer's page)" if response.text else "(empty)"


def _gaps(seqs: list[int]) -> list[int]:
    present = set(seqs)
    return [s for s in range(1, max(present, default=0) + 1) if s not in present]


def _reap() -> None:
    """Collect the exit status of services this process started and stopped."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


MIN_UPTIME = 1.0
"""Seconds a restarted worker serves before the next kill, at the least."""


async def kill_worker_repeatedly(stack: Stack, drill: Drill, every: float, done: asyncio.Event):
    """A kill every ``every`` seconds, counted from the kill before (not from the
    restart, whose Python start-up is slow on a loaded machine), and never before the
    new worker has polled for ``MIN_UPTIME`` (a kill before that would only test
    start-up). The first comes after a second at most: a run of posts may be over
    before ``every`` has passed once."""
    next_kill = time.monotonic() + min(every, 1.0)
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), max(0.0, next_kill - time.monotonic()))
        if done.is_set():
            return
        pid = stack.owned_pid("worker")
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            _reap()
            stack.pid_path("worker").unlink(missing_ok=True)
            drill.faults += 1
        next_kill = time.monotonic() + every
        await asyncio.to_thread(stack.start, stack.worker())  # returns once it polls
        next_kill = max(next_kill, time.monotonic() + MIN_UPTIME)


async def restart(stack: Stack, society: Society, drill: Drill, name: str, down_for: float):
    """Stop one service, ask the API what it can while it is down, start it again."""
    await asyncio.sleep(2.0)  # let the drill's traffic get going first
    service = getattr(stack, name)()
    await asyncio.to_thread(stack.stop_service, name, service.stop)
    _reap()
    drill.faults += 1
    reader = next(iter(society.listeners.values()))
    chat_id = next(iter(society.chats))
    probes = [
        ("GET", "/readyz", {}),
        ("GET", f"/v1/agents/{reader.agent_id}", {"headers": reader.headers}),
        ("GET", f"/v1/chats/{chat_id}/messages", {"headers": reader.headers}),
    ]
    poster = society.listeners[society.chats[chat_id][0]]
    until = time.monotonic() + down_for
    while time.monotonic() < until:
        for method, url, kw in probes:
            try:
                r = await society.api.request(method, url, timeout=40, **kw)
                drill.while_down[r.status_code] += 1
            except httpx.HTTPError:
                drill.while_down["no answer"] += 1
        # a post while it is down: accepted and delivered unless Temporal itself is down,
        # and stored when the store is back (verify counts it with the drill's posts)
        key = f"{drill.name}-down-{drill.faults}-{len(drill.accepted)}"
        try:
            r = await society.api.post(
                f"/v1/chats/{chat_id}/messages",
                timeout=40,
                json={"content": key},
                headers=poster.headers | {"Idempotency-Key": key},
            )
            drill.while_down[f"post {r.status_code}"] += 1
            if r.status_code == 201:
                drill.accepted[key] = {"chat": chat_id, "sender": poster.agent_id, **r.json()}
        except httpx.HTTPError:
            drill.while_down["post no answer"] += 1
        await asyncio.sleep(0.5)
    await asyncio.to_thread(stack.start, service)


async def run_drill(
    name: str,
    stack: Stack,
    society: Society,
    messages: int,
    fault: Callable[[Drill, asyncio.Event], Awaitable[None]],
    through_fault: bool = False,
) -> Drill:
    """``messages`` posts while ``fault`` runs; ``through_fault``: and on until it is over
    (the fault must then end by itself; otherwise it ends when the posts do)."""
    drill = Drill(name)
    console.print(f"[bold]drill {name}[/]: {messages} messages across {len(society.chats)} chats")
    started = time.monotonic()
    done, over = asyncio.Event(), asyncio.Event()

    async def inject() -> None:
        try:
            await fault(drill, done)
        finally:
            over.set()

    injector = asyncio.create_task(inject())

    def settled() -> bool:
        """The fault is over, and a post begun after its last strike was accepted (so
        the time to resume is measured for every strike; at most a minute more)."""
        if not over.is_set():
            return False
        last = drill.fault_times[-1] if drill.fault_times else 0.0
        late = any(a["at"] > last for a in drill.accepted.values())
        return late or time.monotonic() > last + 60

    await society.post_all(drill, messages, until=settled if through_fault else None)
    done.set()
    await injector
    if stack.with_app and stack.owned_pid("worker") is None:  # the cluster heals its own
        await asyncio.to_thread(stack.start, stack.worker())
    drill.report = (await society.verify(drill)) | drill.report  # + what the fault noted
    drill.seconds = time.monotonic() - started
    drill.report |= {
        "faults": drill.faults,
        "seconds": round(drill.seconds, 1),
        "answers": {str(k): v for k, v in sorted(drill.statuses.items(), key=str)},
        "answers_while_down": {str(k): v for k, v in sorted(drill.while_down.items(), key=str)},
        "retried_because": dict(drill.reasons.most_common(8)),
        "server_errors": sum(
            n
            for k, n in (drill.statuses + drill.while_down).items()
            if isinstance(k, int) and k >= 500 and k not in (502, 503, 504)
        ),
    }
    console.print(drill.report)
    return drill


async def long_life(stack: Stack, society: Society, size: dict) -> dict:
    """One chat gets ``long_messages`` posts while one agent tunes its attention
    ``long_attention`` times; both must continue as new and keep working."""
    console.print(
        f"[bold]long life[/]: {size['long_messages']} messages into one chat, "
        f"{size['long_attention']} attention changes of one agent"
    )
    poster = await society.introduce("Talker")
    tuner = await society.introduce("Tuner")
    chat_id = await society.group(poster, tuner)
    drill = Drill("long")
    started = time.monotonic()
    progress = {"posted": 0, "tuned": 0}

    async def post_lane(numbers) -> None:
        for i in numbers:
            key = f"long-{i}"
            r = await society.call(
                "POST",
                f"/v1/chats/{chat_id}/messages",
                drill,
                json={"content": key},
                headers=poster.headers | {"Idempotency-Key": key},
            )
            if r.status_code == 201:
                drill.accepted[key] = {"chat": chat_id, "sender": poster.agent_id, **r.json()}
            progress["posted"] += 1

    async def tune_lane(numbers) -> None:
        for i in numbers:
            body = {"dialogues": {chat_id: {"importance": round((i % 100) / 100, 2)}}}
            r = await society.call(
                "PATCH",
                f"/v1/agents/{tuner.agent_id}/attention",
                drill,
                json=body,
                headers=tuner.headers,
            )
            drill.statuses[f"attention {r.status_code}"] += 1
            progress["tuned"] += 1

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(15)
            console.print(
                f"  long life: {progress['posted']} posted, {progress['tuned']} tuned, "
                f"{time.monotonic() - started:.0f} s"
            )

    reporter = asyncio.create_task(report_progress())
    posts, tunes = iter(range(size["long_messages"])), iter(range(size["long_attention"]))
    await asyncio.gather(
        *(post_lane(posts) for _ in range(8)), *(tune_lane(tunes) for _ in range(4))
    )
    reporter.cancel()
    elapsed = time.monotonic() - started
    # still working: one more post and one more tuning after all those lives
    after = await society.call(
        "POST",
        f"/v1/chats/{chat_id}/messages",
        json={"content": "still here"},
        headers=tuner.headers,
    )
    tuned = await society.call(
        "PATCH",
        f"/v1/agents/{tuner.agent_id}/attention",
        json={"dialogues": {chat_id: {"importance": 0.42}}},
        headers=tuner.headers,
    )
    view = tuned.json()
    importance = next(
        (
            d["entry"].get("importance")
            for d in view.get("dialogues", [])
            if d["entry"].get("chat_id") == chat_id
        ),
        None,
    )
    drill.accepted["still here"] = {"chat": chat_id, "sender": tuner.agent_id, **after.json()}
    expected = size["long_messages"] + 1
    deadline = time.monotonic() + 120
    stored = await society.history(chat_id)
    while len(stored) < expected and time.monotonic() < deadline:  # stored a moment later
        await asyncio.sleep(0.5)
        stored = await society.history(chat_id)
    settings = Settings(temporal_address=stack.env()["AGORA_TEMPORAL_ADDRESS"])
    client = await connect_temporal(settings)
    runs = {}
    for workflow_id in (f"chat/{chat_id}", f"agent/{tuner.agent_id}"):
        sizes = []
        async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            described = await client.get_workflow_handle(
                workflow_id, run_id=execution.run_id
            ).describe()
            info = described.raw_description.workflow_execution_info
            sizes.append((info.history_length, info.history_size_bytes))
        runs[workflow_id.split("/")[0]] = {
            "runs": len(sizes),
            "largest_history_events": max(s[0] for s in sizes),
            "largest_history_bytes": max(s[1] for s in sizes),
        }
    return {
        "messages": size["long_messages"],
        "attention_changes": size["long_attention"],
        "seconds": round(elapsed, 1),
        "posts_per_second": round(size["long_messages"] / elapsed, 1),
        "stored": len(stored),
        "seq_gaps": len(_gaps([m["seq"] for m in stored])),
        "last_post_seq": after.json().get("seq"),
        "last_post_status": after.status_code,
        "last_tuning_status": tuned.status_code,
        "last_tuning_applied": importance == 0.42,
        "chat": runs["chat"],
        "agent": runs["agent"],
        "history_warning_events": HISTORY_WARN_EVENTS,
        "history_warning_bytes": HISTORY_WARN_BYTES,
        "answers": {str(k): v for k, v in sorted(drill.statuses.items(), key=str)},
    }


async def fault_drills(stack: Stack, society: Society, size: dict, result: dict) -> None:
    """The five drills, one after another, each during its own run of posts."""
    groups = size["chats"]
    members = [await society.introduce(f"A{i}") for i in range(3 * groups)]
    for c in range(groups):
        await society.group(*members[3 * c : 3 * c + 3])
    await asyncio.sleep(1.5)  # the streams are open
    n = size["messages"]

    def every(drill: Drill, done: asyncio.Event):
        return kill_worker_repeatedly(stack, drill, size["kill_every"], done)

    def bounce(name: str):
        def fault(drill: Drill, _done: asyncio.Event):
            return restart(stack, society, drill, name, size["down_for"])

        return fault

    faults = {
        "worker-sigkill": every,
        "rabbitmq-restart": bounce("rabbitmq"),
        "ferretdb-restart": bounce("ferretdb"),
        "postgres-restart": bounce("postgres"),
        "temporal-restart": bounce("temporal"),
    }
    # DRILL_ONLY=rabbitmq-restart,temporal-restart: those alone (a drill under repair)
    only = [d for d in os.environ.get("DRILL_ONLY", "").split(",") if d] or list(faults)
    if unknown := set(only) - set(faults):
        raise SystemExit(f"DRILL_ONLY: no drill {sorted(unknown)}; the drills: {list(faults)}")
    drills = [await run_drill(name, stack, society, n, faults[name]) for name in only]
    result["drills"] = {d.name: d.report for d in drills}
    result["duplicate_deliveries_by_listener_reconnects"] = {
        a: listener.reconnects for a, listener in society.listeners.items()
    }


PARTS = ("faults", "long")
"""What ``make drills`` runs; ``DRILLS=cluster`` adds the drills on the cluster topology."""
EVERY_PART = (*PARTS, "cluster")


async def run(
    size_name: str = "full", home: Path | None = None, parts: tuple[str, ...] = PARTS
) -> dict:
    size = SIZES[size_name]
    if unknown := set(parts) - set(EVERY_PART):
        raise ValueError(f"DRILLS: unknown part(s) {sorted(unknown)}; choose from {EVERY_PART}")
    own_home = home is None
    home = home or Path(tempfile.mkdtemp(prefix="agora-drills-"))
    # the drills are the load: the per-agent limits stay out of their way (for the
    # processes this run starts; the caller's environment is given back at the end)
    saved = dict(os.environ)
    os.environ |= {
        "AGORA_RATE_PER_TOKEN_PER_SECOND": "100000",
        "AGORA_RATE_BURST_PER_TOKEN": "100000",
        "AGORA_MESSAGES_PER_AGENT_PER_MINUTE": "100000000",
        "AGORA_MESSAGE_BURST_PER_AGENT": "100000",
        "AGORA_CONTINUE_AS_NEW_AFTER_UPDATES": str(size["updates_per_run"]),
    }
    stack = Stack(home, Ports.free(), with_ui=False)
    result: dict = {
        "date": datetime.now(UTC).isoformat(),
        "size": size_name,
        "cores": os.cpu_count(),
        "command": f"DRILL_SIZE={size_name} make drills"
        if parts == PARTS
        else f"DRILLS={','.join(parts)} DRILL_SIZE={size_name} make drills",
    }
    try:
        if {"faults", "long"} & set(parts):
            await single_stack(stack, size, parts, result)
        if "cluster" in parts:
            from bench.cluster_drills import run_cluster

            await run_cluster(size, home, result)
    finally:
        _reap()
        os.environ.clear()
        os.environ.update(saved)
        if own_home:
            shutil.rmtree(home, ignore_errors=True)
    return result


async def single_stack(stack: Stack, size: dict, parts: tuple[str, ...], result: dict) -> None:
    console.print(f"starting a stack of its own in {stack.home}")
    try:
        await asyncio.to_thread(stack.up)
        async with httpx.AsyncClient(
            base_url=stack.env()["AGORA_API_URL"], timeout=60, limits=client_limits(64)
        ) as api:
            society = Society(stack, api)
            if "faults" in parts:
                await fault_drills(stack, society, size, result)
            if "long" in parts:
                result["long_life"] = await long_life(stack, society, size)
                console.print(result["long_life"])
            society.stop.set()
            await asyncio.gather(*society.tasks, return_exceptions=True)
    finally:
        await asyncio.to_thread(stack.down)


VERDICT = (
    "drill",
    "accepted",
    "stored",
    "twice",
    "gaps",
    "missing",
    "dup. deliveries",
    "faults",
    "5xx (not 502/3/4)",
)
"""The columns every drill's row starts with (``verdict``)."""


def verdict(name: str, r: dict) -> list[str]:
    keys = ("accepted", "stored", "stored_twice", "seq_gaps", "deliveries_missing")
    keys += ("duplicate_deliveries", "faults", "server_errors")
    return [name, *(str(r[k]) for k in keys)]


def print_table(result: dict) -> None:
    table = Table(
        *VERDICT,
        "answers while down",
        title=f"Agora drills ({result['size']}, {result['cores']} cores)",
    )
    for name, r in result.get("drills", {}).items():
        down = ", ".join(f"{k}×{v}" for k, v in r["answers_while_down"].items()) or "-"
        table.add_row(*verdict(name, r), down)
    if "drills" in result:
        console.print(table)
    if "cluster" in result:
        print_cluster_table(result)
    if "long_life" not in result:
        return
    life = result["long_life"]
    console.print(
        f"long life: {life['stored']} stored of {life['messages'] + 1}, {life['seq_gaps']} gaps, "
        f"{life['posts_per_second']} posts/s; chat {life['chat']['runs']} runs, largest "
        f"{life['chat']['largest_history_events']} events / "
        f"{life['chat']['largest_history_bytes']:,} bytes; agent {life['agent']['runs']} runs, "
        f"largest {life['agent']['largest_history_events']} events / "
        f"{life['agent']['largest_history_bytes']:,} bytes (Temporal warns at "
        f"{HISTORY_WARN_EVENTS:,} events or {HISTORY_WARN_BYTES:,} bytes)"
    )


def print_cluster_table(result: dict) -> None:
    cluster = result["cluster"]
    table = Table(
        *VERDICT,
        "resumed p50 / max s",
        "streams back p50 / max s",
        title=f"Agora cluster drills ({result['size']}, {cluster['listeners']} "
        f"listeners, {cluster['chats']} chats)",
    )
    for name, r in cluster["drills"].items():
        back = r.get("streams_back")
        table.add_row(
            *verdict(name, r),
            f"{r['resumed']['p50']} / {r['resumed']['max']}",
            f"{back['p50']} / {back['max']}" if back else "-",
        )
    console.print(table)


async def main() -> None:
    size = os.environ.get("DRILL_SIZE", "full")
    parts = tuple(p.strip() for p in os.environ.get("DRILLS", ",".join(PARTS)).split(",") if p)
    # SIGTERM stops the run and takes its stack down (a background job ignores SIGINT)
    running = asyncio.current_task()
    assert running is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
    result = await run(size, parts=parts)
    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-drills-{size}.json"
    path.write_text(json.dumps(result, indent=2))
    print_table(result)
    console.print(f"written to {path}\nreproduce: {result['command']}")


if __name__ == "__main__":
    asyncio.run(main())
