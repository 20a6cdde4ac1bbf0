"""The same group-chat turn loop in AutoGen and in Agora, turns per second each.

Four agents, a fixed number of turns, a scripted model: AutoGen's in-memory
``RoundRobinGroupChat`` with ``ReplayChatCompletionClient`` (the optional ``bench``
extra: ``pip install -e '.[bench]'``), and an Agora group chat with the ``round_robin``
policy and one message per turn, where each agent waits on its stream for
``chat.floor_granted``, posts its scripted line and asks for the floor again.

The same loop with four hosted agents (the offline model) taking turns by themselves:
nobody drives them; each hears of the room's messages, asks for the floor, composes and
posts when granted. The turn's overhead is its time minus the time inside the model, as
``chat.floor_released`` reports it.

AutoGen keeps the whole conversation in one process's memory: a crash loses it. Agora
stores every message, and the floor, before it says so; a killed worker resumes the loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import websockets


def autogen_available() -> bool:
    try:
        import autogen_agentchat  # noqa: F401
        import autogen_ext.models.replay  # noqa: F401
    except ImportError:
        return False
    return True


async def autogen_round_robin(turns: int) -> dict:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.replay import ReplayChatCompletionClient

    per_agent = turns // 4 + 1
    agents = [
        AssistantAgent(
            f"agent{i}",
            model_client=ReplayChatCompletionClient(
                [f"agent{i} says line {k}" for k in range(per_agent)]
            ),
        )
        for i in range(4)
    ]
    # the task message counts as one: ``turns`` replies follow it
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(turns + 1))
    started = time.perf_counter()
    result = await team.run(task="begin")
    elapsed = time.perf_counter() - started
    replies = len(result.messages) - 1
    return {"turns": replies, "seconds": elapsed, "turns_per_second": replies / elapsed}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _turn_figures(released: list[dict]) -> dict:
    """p50 and p99 of the turns' durations and overheads, in ms, from the chat's own
    ``chat.floor_released`` payloads."""
    seconds = [e["turn_seconds"] for e in released if e.get("turn_seconds") is not None]
    overhead = [e["overhead_seconds"] for e in released if e.get("overhead_seconds") is not None]

    def ms(values, q):
        found = _pct(values, q)
        return None if found is None else found * 1000

    return {
        "turn_p50_ms": ms(seconds, 0.5),
        "turn_p99_ms": ms(seconds, 0.99),
        "overhead_p50_ms": ms(overhead, 0.5),
        "overhead_p99_ms": ms(overhead, 0.99),
    }


async def agora_hosted_round_robin(base: str, admin_token: str, turns: int) -> dict:
    """Four hosted agents in a round-robin room, one message a turn; an external owner
    opens the room with one post and watches its stream."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    run = uuid.uuid4().hex[:6]
    ws_base = base.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        r = await api.post(
            "/v1/agents", json={"agent_id": f"rro-{run}", "name": "Owner"}, headers=admin
        )
        r.raise_for_status()
        owner = (r.json()["agent_id"], {"Authorization": f"Bearer {r.json()['token']}"})
        hosts = []
        for i in range(4):
            r = await api.post(
                "/v1/agents",
                headers=admin,
                json={
                    "agent_id": f"rrh{i}-{run}",
                    "name": f"Host{i}",
                    "brain": {"turns_per_hour": 10_000},
                },
            )
            r.raise_for_status()
            hosts.append(r.json()["agent_id"])
        r = await api.post(
            "/v1/chats",
            headers=owner[1],
            json={
                "type": "group",
                "participants": hosts,
                "speaker_policy": "round_robin",
                "floor": {"max_messages_per_turn": 1},
            },
        )
        r.raise_for_status()
        chat = r.json()["chat_id"]
        said: list[tuple[float, str]] = []
        released: list[dict] = []
        async with websockets.connect(
            f"{ws_base}/v1/agents/{owner[0]}/stream", additional_headers=owner[1]
        ) as ws:
            await api.post(f"/v1/chats/{chat}/floor", json={}, headers=owner[1])
            r = await api.post(
                f"/v1/chats/{chat}/messages",
                headers=owner[1],
                json={"content": "begin", "yield": True},
            )
            r.raise_for_status()
            deadline = time.perf_counter() + max(120, turns * 2)
            while len(said) < turns and time.perf_counter() < deadline:
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 5))
                except TimeoutError:
                    continue
                payload = event["payload"]
                if event["type"] == "message.sent" and payload["message"]["from"] in hosts:
                    said.append((time.perf_counter(), payload["message"]["from"]))
                elif event["type"] == "chat.floor_released" and payload["agent_id"] in hosts:
                    released.append(payload)
        # the hosted agents would talk on: closing the room ends the loop
        await api.delete(f"/v1/chats/{chat}", headers=owner[1])
    speakers = [who for _, who in said]
    in_turn = all(
        hosts.index(b) == (hosts.index(a) + 1) % 4
        for a, b in zip(speakers, speakers[1:], strict=False)
    )
    elapsed = said[-1][0] - said[0][0] if len(said) > 1 else float("nan")
    return {
        "turns": len(said),
        "seconds": elapsed,
        "turns_per_second": (len(said) - 1) / elapsed if len(said) > 1 else 0.0,
        "strict_rotation": in_turn,
        **_turn_figures(released[1:]),  # the first turn waited for the agents to start
        "chat_id": chat,  # to find the room's histories (``python -m bench.steady turn``)
        "hosts": hosts,
    }


async def agora_round_robin(base: str, admin_token: str, turns: int) -> dict:
    admin = {"Authorization": f"Bearer {admin_token}"}
    run = uuid.uuid4().hex[:6]
    ws_base = base.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        agents = []
        for i in range(4):
            r = await api.post(
                "/v1/agents", json={"agent_id": f"rr{i}-{run}", "name": f"RR{i}"}, headers=admin
            )
            r.raise_for_status()
            agents.append((r.json()["agent_id"], {"Authorization": f"Bearer {r.json()['token']}"}))
        owner = agents[0]
        r = await api.post(
            "/v1/chats",
            headers=owner[1],
            json={
                "type": "group",
                "participants": [a[0] for a in agents[1:]],
                "speaker_policy": "round_robin",
            },
        )
        r.raise_for_status()
        chat = r.json()["chat_id"]
        r = await api.patch(
            f"/v1/chats/{chat}/floor", headers=owner[1], json={"max_messages_per_turn": 1}
        )
        r.raise_for_status()
        posted = 0
        released: list[dict] = []
        done = asyncio.Event()
        ready = asyncio.Barrier(5)
        speakers: list[str] = []

        async def agent(me: tuple[str, dict]) -> None:
            nonlocal posted
            url = f"{ws_base}/v1/agents/{me[0]}/stream"
            async with websockets.connect(url, additional_headers=me[1]) as ws:
                await ready.wait()
                await api.post(f"/v1/chats/{chat}/floor", json={}, headers=me[1])
                line = 0
                while not done.is_set():
                    try:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 1))
                    except TimeoutError:
                        continue
                    if event["type"] == "chat.floor_released" and me is agents[0]:
                        released.append(event["payload"])  # one member's copy of each
                    if event["type"] != "chat.floor_granted":
                        continue
                    if event["payload"].get("agent_id") != me[0]:
                        continue
                    if posted >= turns:
                        done.set()
                        return
                    r = await api.post(
                        f"/v1/chats/{chat}/messages",
                        headers=me[1],
                        json={"content": f"{me[0]} says line {line}"},
                    )
                    r.raise_for_status()
                    line += 1
                    posted += 1
                    speakers.append(me[0])
                    if posted >= turns:
                        done.set()
                        return
                    await api.post(f"/v1/chats/{chat}/floor", json={}, headers=me[1])

        tasks = [asyncio.create_task(agent(a)) for a in agents]
        await ready.wait()
        started = time.perf_counter()
        await asyncio.wait_for(done.wait(), timeout=max(120, turns * 2))
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        order = [a[0] for a in agents]
        in_turn = all(
            order.index(b) == (order.index(a) + 1) % 4
            for a, b in zip(speakers, speakers[1:], strict=False)
        )
    return {
        "turns": posted,
        "seconds": elapsed,
        "turns_per_second": posted / elapsed,
        "strict_rotation": in_turn,
        **_turn_figures(released),
    }
