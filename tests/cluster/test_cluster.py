"""The cluster topology (``make cluster-up``): two API processes behind HAProxy, two
workers, three RabbitMQ nodes with quorum queues. Nothing in Agora assumes one process:
each rule below is checked across the two APIs, and each part is killed with SIGKILL
while the rest keeps serving.

One cluster serves the module (it starts in about a minute); it runs on free ports in a
temporary folder, and the suite's log check reads its logs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from cli.cluster import Cluster, ClusterPorts
from tests.conftest import ISSUED, eventually
from tests.helpers import Agent, Stream, bearer, group, introduce

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(
        tmp_path_factory.mktemp("cluster"),
        ClusterPorts.free(),
        with_ui=False,
        # the request rate keeps its defaults (its test is here); posts are the drills'
        settings={
            "AGORA_METRICS_REFRESH_SECONDS": "1",
            "AGORA_MESSAGES_PER_AGENT_PER_MINUTE": "100000",
            "AGORA_MESSAGE_BURST_PER_AGENT": "10000",
        },
    )
    ISSUED.add(started.stack.admin_token)
    ISSUED.add(started.stack.token_secret)
    try:
        started.up()
        yield started
    finally:
        started.down()


@pytest.fixture
async def lb(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the load balancer, as users reach the cluster."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.ports.api}", timeout=30) as c:
        yield c


@pytest.fixture
def admin(cluster: Cluster) -> dict[str, str]:
    return bearer(cluster.stack.admin_token)


def direct(cluster: Cluster, i: int) -> str:
    """The base URL of API process ``i`` itself, past the load balancer."""
    return f"http://127.0.0.1:{cluster.ports.apis[i - 1]}"


def front(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.ports.api}"


async def post(lb: httpx.AsyncClient, chat_id: str, agent: Agent, text: str) -> dict:
    response = await lb.post(
        f"/v1/chats/{chat_id}/messages",
        json={"content": text},
        headers=agent.headers | {"Idempotency-Key": f"{agent.agent_id}-{text}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def restarted(cluster: Cluster, name: str) -> None:
    await asyncio.to_thread(cluster.start, name)


def test_when_the_cluster_is_up_the_balancer_sends_requests_to_both_apis(cluster):
    """HAProxy marks an API up only after two passing checks: ``up`` (and a restart)
    returns once it has, not while every request still goes to the other API."""
    states = cluster.balancer_states()
    assert states["apis/api-1"] == "UP", states
    assert states["apis/api-2"] == "UP", states


async def test_a_post_reaches_streams_held_by_either_api_and_inboxes_are_quorum_queues(
    cluster, lb, admin
):
    ada, bob, cy = [await introduce(lb, admin, n) for n in ("Ada", "Bob", "Cy")]
    chat = await group(lb, ada, bob, cy, topic="across")
    async with Stream(direct(cluster, 1), cy) as on_one, Stream(direct(cluster, 2), bob) as on_two:
        sent = await post(lb, chat["chat_id"], ada, "hello from either side")
        for stream in (on_one, on_two):
            seen = await stream.until(
                lambda e: (
                    e["type"] == "message.sent"
                    and e["payload"]["message"]["message_id"] == sent["message_id"]
                )
            )
            assert seen[-1]["payload"]["message"]["content"] == "hello from either side"
    listed = await asyncio.to_thread(
        cluster.rabbitmqctl, 1, "list_queues", "name", "type", "members", "--no-table-headers"
    )
    inbox = next(line for line in listed.stdout.splitlines() if f"inbox.{bob.agent_id}" in line)
    assert "\tquorum\t" in inbox, inbox
    assert all(cluster.node_name(i) in inbox for i in (1, 2, 3)), inbox


async def test_one_stream_per_agent_holds_across_the_two_apis(cluster, lb, admin):
    ada, bob = [await introduce(lb, admin, n) for n in ("Ada", "Bob")]
    chat_id = (await group(lb, bob, ada, topic="one reader"))["chat_id"]
    async with Stream(direct(cluster, 1), ada) as first:
        await post(lb, chat_id, bob, "the first stream reads this")
        await first.until(lambda e: e["type"] == "message.sent")  # it holds the inbox now
        for i in (1, 2):
            second = Stream(direct(cluster, i), ada)
            async with second:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.next(timeout=10)
            assert closed.value.rcvd.code == 4409, closed.value
    async with Stream(direct(cluster, 2), ada) as after:  # the first one closed: free again
        await after.connection.ping()


async def test_the_rate_limit_holds_across_the_two_apis(cluster, lb, admin):
    """Each API allows half of the limit (AGORA_API_REPLICAS=2): spread over both by the
    load balancer, a caller gets the whole limit, not twice it."""
    ada = await introduce(lb, admin, "Ada")
    me = f"/v1/agents/{ada.agent_id}"
    started = time.monotonic()
    answers = await asyncio.gather(*(lb.get(me, headers=ada.headers) for _ in range(150)))
    elapsed = time.monotonic() - started
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 429}, codes
    allowed = 60 + 20 * elapsed  # the default burst, and what the rate refilled meanwhile
    assert codes.count(200) <= allowed + 2, (codes.count(200), elapsed)
    assert codes.count(200) >= 50, codes.count(200)  # both halves of the burst were served


async def test_a_revoked_token_is_refused_by_both_apis_within_a_second(cluster, lb, admin):
    ada = await introduce(lb, admin, "Ada")
    me = f"/v1/agents/{ada.agent_id}"
    clients = [httpx.AsyncClient(base_url=direct(cluster, i), timeout=30) for i in (1, 2)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
            assert (await client.get(me, headers=ada.headers)).status_code == 200
        rotated = await clients[0].post(f"{me}/tokens", headers=ada.headers)
        assert rotated.status_code == 201, rotated.text
        ISSUED.add(rotated.json()["token"])
        started = time.monotonic()
        for client in clients:
            await eventually(
                lambda c=client: c.get(me, headers=ada.headers),
                lambda r: r.status_code == 401,
                timeout=5,
                interval=0.05,
            )
        assert time.monotonic() - started <= 1.5


async def test_tickets_from_one_api_open_a_stream_and_an_observer_on_the_other(cluster, lb, admin):
    ada, bob = [await introduce(lb, admin, n) for n in ("Ada", "Bob")]
    chat_id = (await group(lb, ada, bob, topic="watched"))["chat_id"]
    async with httpx.AsyncClient(base_url=direct(cluster, 1), timeout=30) as one:
        ticket = await one.post(f"/v1/agents/{ada.agent_id}/stream-ticket", headers=ada.headers)
        observer = await one.post("/v1/observe/ticket", json={"chat_id": chat_id}, headers=admin)
    assert ticket.status_code == 201, ticket.text
    assert observer.status_code == 201, observer.text
    ISSUED.update({ticket.json()["ticket"], observer.json()["ticket"]})
    two = direct(cluster, 2).replace("http", "ws", 1)
    stream_url = f"{two}/v1/agents/{ada.agent_id}/stream?ticket={ticket.json()['ticket']}"
    observe_url = f"{two}/v1/observe?ticket={observer.json()['ticket']}"
    async with websockets.connect(stream_url) as stream, websockets.connect(observe_url) as seen:
        ready = json.loads(await asyncio.wait_for(seen.recv(), 10))
        assert ready["type"] == "observer.ready", ready
        sent = await post(lb, chat_id, bob, "seen by both doors")
        for socket in (stream, seen):
            while True:
                event = json.loads(await asyncio.wait_for(socket.recv(), 15))
                if event["type"] == "message.sent":
                    assert event["payload"]["message"]["message_id"] == sent["message_id"]
                    break


async def test_a_stream_that_loses_its_api_reconnects_through_the_balancer_and_misses_nothing(
    cluster, lb, admin
):
    ada, bob = [await introduce(lb, admin, n) for n in ("Ada", "Bob")]
    chat_id = (await group(lb, ada, bob, topic="failover"))["chat_id"]
    url = front(cluster).replace("http", "ws", 1) + f"/v1/agents/{bob.agent_id}/stream"
    got: dict[str, dict] = {}
    duplicates = 0

    async def read(connection) -> None:
        nonlocal duplicates
        async for raw in connection:
            event = json.loads(raw)
            if event["type"] != "message.sent":
                continue
            if event["event_id"] in got:
                duplicates += 1
            got[event["event_id"]] = event

    async def listen(stop: asyncio.Event) -> None:
        """Bob's client: reconnect through the balancer whenever the stream drops."""
        while not stop.is_set():
            with contextlib.suppress(OSError, websockets.WebSocketException):
                async with websockets.connect(url, additional_headers=bob.headers) as connection:
                    reader = asyncio.create_task(read(connection))
                    stopped = asyncio.create_task(stop.wait())
                    await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    reader.cancel()
                    stopped.cancel()
            await asyncio.sleep(0.2)

    stop = asyncio.Event()
    listener = asyncio.create_task(listen(stop))
    sent: list[str] = []
    await asyncio.sleep(1)
    killed = False
    for n in range(30):
        if n == 10:  # SIGKILL the API process that holds Bob's stream
            holder = await _holder(cluster)
            await asyncio.to_thread(cluster.kill, holder)
            killed = holder
        sent.append((await post_past_a_dead_api(lb, chat_id, ada, f"line {n}"))["message_id"])
        await asyncio.sleep(0.05)
    try:
        await eventually(
            lambda: _value({e["payload"]["message"]["message_id"] for e in got.values()}),
            lambda ids: set(sent) <= ids,
            timeout=60,
        )
    finally:
        stop.set()
        await asyncio.wait_for(listener, 10)
        if killed:
            await restarted(cluster, killed)
    assert killed


async def _value(value):
    return value


async def _streams_open(base_url: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("agora_streams_open "))
    return int(float(line.split()[1]))


async def _holder(cluster: Cluster) -> str:
    """The API process that holds the (one) open stream."""
    counts = [await _streams_open(direct(cluster, i)) for i in (1, 2)]
    assert sorted(counts) == [0, 1], counts
    return f"api-{counts.index(1) + 1}"


async def test_a_rabbitmq_node_killed_leaves_the_cluster_serving_and_says_which(cluster, lb, admin):
    ada, bob = [await introduce(lb, admin, n) for n in ("Ada", "Bob")]
    chat_id = (await group(lb, ada, bob, topic="node down"))["chat_id"]
    await asyncio.to_thread(cluster.kill, "rabbitmq-2")
    try:
        ready = await eventually(
            lambda: lb.get("/readyz"),
            lambda r: r.status_code == 200 and r.json()["status"] == "degraded",
            timeout=30,
        )
        assert cluster.node_addresses[1] in ready.json()["checks"]["rabbitmq_nodes"]
        status = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli.main", "cluster", "status", "--home", str(cluster.home)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert status.returncode == 1, status.stdout
        assert "rabbitmq-2 down: 2 of 3 rabbitmq left, serving" in status.stdout
        async with Stream(front(cluster), bob) as stream:
            sent = []
            for n in range(10):
                for _ in range(50):  # a publish on a connection to the dead node is retried
                    response = await lb.post(
                        f"/v1/chats/{chat_id}/messages",
                        json={"content": f"while down {n}"},
                        headers=ada.headers | {"Idempotency-Key": f"down-{chat_id}-{n}"},
                    )
                    if response.status_code == 201:
                        break
                    assert response.status_code in (502, 503, 504), response.text
                    await asyncio.sleep(0.2)
                sent.append(response.json()["message_id"])
            seen: set[str] = set()
            while not set(sent) <= seen:
                event = await stream.next(timeout=30)
                if event["type"] == "message.sent":
                    seen.add(event["payload"]["message"]["message_id"])
    finally:
        await restarted(cluster, "rabbitmq-2")
    await eventually(lambda: lb.get("/readyz"), lambda r: r.json()["status"] == "ready", timeout=60)


def test_the_cluster_topology_names_its_parts_and_binds_to_loopback(cluster):
    config = cluster.haproxy_config().read_text()
    binds = [line.split()[1] for line in config.splitlines() if line.strip().startswith("bind")]
    assert binds and all(b.startswith("127.0.0.1:") for b in binds), binds
    assert "option httpchk GET /readyz" in config
    # its FerretDB is the stack's: telemetry disabled, as the running process shows
    assert "--telemetry=disable" in cluster.service("ferretdb").argv
    pid = cluster.stack.owned_pid("ferretdb")
    assert pid is not None
    running = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--telemetry=disable" in running, running
    assert cluster.parts == [
        "rabbitmq-1",
        "rabbitmq-2",
        "rabbitmq-3",
        "haproxy",
        "worker-1",
        "worker-2",
        "api-1",
        "api-2",
    ]


async def test_both_apis_show_the_same_society_in_their_metrics(cluster, admin):
    """Each API refreshes its gauges from the shared store, so either answers for the
    whole society, whichever process introduced an agent."""

    async def agents(i: int) -> float:
        async with httpx.AsyncClient(base_url=direct(cluster, i), timeout=10) as client:
            text = (await client.get("/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("agora_agents{")
        )

    before = [await agents(i) for i in (1, 2)]
    async with httpx.AsyncClient(base_url=direct(cluster, 1), timeout=30) as one:
        for name in ("Ada", "Bob", "Cy"):
            await introduce(one, admin, name)
    after = [
        await eventually(lambda i=i: agents(i), lambda n, b=b: n >= b + 3, timeout=20)
        for i, b in zip((1, 2), before, strict=True)
    ]
    assert after[0] == after[1], after


async def test_an_mcp_client_is_served_by_either_api(cluster, lb, admin):
    """The MCP door is stateless HTTP: calls through the balancer land on both processes,
    and each answers as the same agent with the same state."""
    from tests.api.test_mcp import as_agent, data

    ada, bob = [await introduce(lb, admin, n) for n in ("Ada", "Bob")]
    chat_id = (await group(lb, ada, bob, topic="mcp across"))["chat_id"]
    before = [await _requests(direct(cluster, i), "/mcp") for i in (1, 2)]
    async with as_agent(front(cluster), ada.token) as client:
        for n in range(4):
            args = {"chat_id": chat_id, "content": f"mcp {n}", "idempotency_key": f"m{n}"}
            assert data(await client.call_tool("post_message", args))["seq"] == n + 1
        page = data(await client.call_tool("read_messages", {"chat_id": chat_id}))
        assert [m["content"] for m in page["items"]] == [f"mcp {n}" for n in range(4)]
    after = [await _requests(direct(cluster, i), "/mcp") for i in (1, 2)]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


async def _requests(base_url: str, prefix: str) -> float:
    """Requests this API process served whose route starts with ``prefix``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("agora_http_requests_total{") and f'route="{prefix}' in line
    )


async def test_an_a2a_task_made_on_one_api_is_read_on_the_other(cluster, lb, admin):
    from a2a.types import GetTaskRequest, ListTasksRequest, TaskState

    from tests.api.test_a2a_rpc import a2a_client, say, the_task

    ada = await introduce(lb, admin, "Ada")
    host = await introduce(lb, admin, "Host", brain={"turns_per_hour": 1000})
    async with a2a_client(direct(cluster, 1), host.agent_id, ada.token) as one:
        task = await the_task(one, say())
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    async with a2a_client(direct(cluster, 2), host.agent_id, ada.token) as two:
        fetched = await two.get_task(request=GetTaskRequest(id=task.id))
        assert fetched.id == task.id and fetched.status.state == task.status.state
        listed = await two.list_tasks(request=ListTasksRequest(context_id=task.context_id))
        assert task.id in {t.id for t in listed.tasks}


async def listed_state(client, task):
    """A task's state as ``ListTasks`` shows it: a read that never takes the task up."""
    from a2a.types import ListTasksRequest

    listed = await client.list_tasks(request=ListTasksRequest(context_id=task.context_id))
    return {t.id: t.status.state for t in listed.tasks}.get(task.id)


async def post_past_a_dead_api(lb, chat_id: str, agent: Agent, text: str) -> dict:
    """Post through the balancer while it still sends some requests to a dead API: a
    502 or 503 is retried with the same key, anything else fails the test."""
    for _ in range(50):
        answered = await lb.post(
            f"/v1/chats/{chat_id}/messages",
            json={"content": text},
            headers=agent.headers | {"Idempotency-Key": f"{agent.agent_id}-{chat_id}-{text}"},
        )
        if answered.status_code == 201:
            return answered.json()
        assert answered.status_code in (502, 503), answered.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} was never accepted")


async def ada_asks_eve(cluster, lb, admin) -> tuple[Agent, Agent, object]:
    """Ada sends external Eve a message through API 1 and does not wait: the task, once
    API 1 waits for Eve's answer (working, as ``ListTasks`` shows it)."""
    from a2a.types import SendMessageConfiguration, TaskState

    from tests.api.test_a2a_rpc import a2a_client, say, the_task

    ada, eve = [await introduce(lb, admin, n) for n in ("Ada", "Eve")]
    request = say()
    request.configuration.CopyFrom(SendMessageConfiguration(return_immediately=True))
    async with a2a_client(direct(cluster, 1), eve.agent_id, ada.token) as one:
        task = await the_task(one, request)
        working = TaskState.TASK_STATE_WORKING
        await eventually(lambda: listed_state(one, task), lambda s: s == working)
    return ada, eve, task


async def test_an_a2a_task_whose_api_dies_is_finished_by_the_other(cluster, lb, admin):
    """The API process that waits for a task's answer is SIGKILLed after the post: the
    other process, asked for the task, takes up the wait once the dead one's lease runs
    out, and finishes the task with the agent's answer."""
    from a2a.types import GetTaskRequest, TaskState

    from tests.api.test_a2a_rpc import a2a_client, text_of

    ada, eve, task = await ada_asks_eve(cluster, lb, admin)
    async with a2a_client(direct(cluster, 2), eve.agent_id, ada.token) as two:

        async def state():
            return (await two.get_task(request=GetTaskRequest(id=task.id))).status.state

        await eventually(state, lambda s: s == TaskState.TASK_STATE_WORKING)
        await asyncio.to_thread(cluster.kill, "api-1")
        try:
            assert await state() == TaskState.TASK_STATE_WORKING  # nobody has answered
            await post_past_a_dead_api(lb, task.context_id, eve, "Here is the report.")
            await eventually(state, lambda s: s == TaskState.TASK_STATE_COMPLETED, timeout=30)
            done = await two.get_task(request=GetTaskRequest(id=task.id))
            assert text_of(done) == "Here is the report."
        finally:
            await restarted(cluster, "api-1")


async def test_an_a2a_task_running_on_one_api_streams_live_to_a_subscriber_on_the_other(
    cluster, lb, admin
):
    """Ada's task waits for Eve's answer in API 1; Ada subscribes to it through API 2,
    where it does not run: Eve's answer reaches her there as it is given, and ends the
    stream."""
    from a2a.types import SubscribeToTaskRequest, TaskState

    from tests.api.test_a2a_rpc import a2a_client

    ada, eve, task = await ada_asks_eve(cluster, lb, admin)
    async with a2a_client(direct(cluster, 1), eve.agent_id, ada.token) as one:
        async with a2a_client(direct(cluster, 2), eve.agent_id, ada.token, streaming=True) as two:
            seen = []

            async def follow() -> None:
                async for response in two.subscribe(request=SubscribeToTaskRequest(id=task.id)):
                    seen.append(response)

            following = asyncio.create_task(follow())
            await eventually(lambda: asyncio.sleep(0, seen), bool)  # the task, as stored
            await asyncio.sleep(0.5)
            assert not following.done(), "the stream ended before the task did"
            posted = await lb.post(
                f"/v1/chats/{task.context_id}/messages",
                json={"content": "Streamed across."},
                headers=eve.headers,
            )
            assert posted.status_code == 201, posted.text
            await asyncio.wait_for(following, 30)
        assert await listed_state(one, task) == TaskState.TASK_STATE_COMPLETED
    assert seen[0].HasField("task") and seen[0].task.id == task.id
    last = seen[-1].status_update.status
    assert last.state == TaskState.TASK_STATE_COMPLETED
    assert last.message.parts[0].text == "Streamed across."


async def test_an_a2a_task_left_by_a_dead_api_is_finished_even_if_nobody_asks(cluster, lb, admin):
    """The caller only waits (for a push, say): the surviving API process finds the
    task whose lease ran out on its own sweep and finishes it with the answer."""
    from a2a.types import TaskState

    from tests.api.test_a2a_rpc import a2a_client

    ada, eve, task = await ada_asks_eve(cluster, lb, admin)
    await asyncio.to_thread(cluster.kill, "api-1")
    try:
        await post_past_a_dead_api(lb, task.context_id, eve, "Done, as asked.")
        async with a2a_client(direct(cluster, 2), eve.agent_id, ada.token) as two:
            completed = TaskState.TASK_STATE_COMPLETED
            await eventually(lambda: listed_state(two, task), lambda s: s == completed, timeout=40)
    finally:
        await restarted(cluster, "api-1")
