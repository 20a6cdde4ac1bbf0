"""The same group-chat turn loop in AutoGen and in Agora, turns per second each.

Four agents, a fixed number of turns, a scripted model: AutoGen's in-memory
``RoundRobinGroupChat`` with ``ReplayChatCompletionClient`` (the optional ``bench``
extra: ``pip install -e '.[bench]'``), and an Agora group chat with the ``round_robin``
policy and one message per turn, where each agent waits on its stream for
``chat.floor_granted``, posts its scripted line and asks for the floor again.

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


async def agora_round_robin(base: str, admin_token: str, turns: int) -> dict:
    admin = {"Authorization": f"Bearer {admin_token}"}
    run = uuid.uuid4().hex[:6]
    ws_base = base.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        agents = []
        for i in range(4):
            r = await api.post("/v1/agents", json={"agent_id": f"rr{i}-{run}", "name": f"RR{i}"},
                               headers=admin)  # fmt: skip
            r.raise_for_status()
            agents.append((r.json()["agent_id"], {"Authorization": f"Bearer {r.json()['token']}"}))
        owner = agents[0]
        r = await api.post("/v1/chats", headers=owner[1], json={
            "type": "group", "participants": [a[0] for a in agents[1:]],
            "speaker_policy": "round_robin"})  # fmt: skip
        r.raise_for_status()
        chat = r.json()["chat_id"]
        r = await api.patch(f"/v1/chats/{chat}/floor", headers=owner[1],
                            json={"max_messages_per_turn": 1})  # fmt: skip
        r.raise_for_status()
        posted = 0
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
                    if event["type"] != "chat.floor_granted":
                        continue
                    if event["payload"].get("agent_id") != me[0]:
                        continue
                    if posted >= turns:
                        done.set()
                        return
                    r = await api.post(f"/v1/chats/{chat}/messages", headers=me[1],
                                       json={"content": f"{me[0]} says line {line}"})  # fmt: skip
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
    }
