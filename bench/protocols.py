"""The doors side by side: a post made through REST and through MCP (the mcp SDK's own
client over streamable HTTP), each timed from the call to the event on the reader's
WebSocket stream; and a question to a hosted agent (offline model) answered through
REST (post, then the reply on the caller's stream) and through A2A (a2a-sdk's client,
a blocking ``SendMessage``), in the same run.

    make up && BENCH_SIZE=quick make bench      (part of the bench)
    .venv/bin/python -m bench.protocols         (this part alone, on the running stack)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid

import httpx
import httpx2
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


async def doors(env: dict[str, str], posts: int = 25) -> dict:
    api_url, admin = env["AGORA_API_URL"], {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        tokens = {}
        for name in ("ada", "bob", "cy"):
            made = await http.post(
                "/v1/agents", json={"agent_id": f"door-{name}-{run}", "name": name}, headers=admin
            )
            made.raise_for_status()
            tokens[name] = made.json()["token"]
        ada = {"Authorization": f"Bearer {tokens['ada']}"}
        chat = await http.post(
            "/v1/chats",
            json={
                "type": "group",
                "participants": [f"door-bob-{run}", f"door-cy-{run}"],
                "topic": "doors",
            },
            headers=ada,
        )
        chat.raise_for_status()
        chat_id = chat.json()["chat_id"]
        stream_url = api_url.replace("http", "ws", 1) + f"/v1/agents/door-bob-{run}/stream"
        bob = {"Authorization": f"Bearer {tokens['bob']}"}
        async with websockets.connect(stream_url, additional_headers=bob) as stream:

            async def seen(content: str) -> None:
                while True:
                    event = json.loads(await asyncio.wait_for(stream.recv(), 30))
                    message = event.get("payload", {}).get("message") or {}
                    if event["type"] == "message.sent" and message.get("content") == content:
                        return

            rest = []
            for i in range(posts):
                started = time.perf_counter()
                body = {"content": f"rest {i}"}
                posted = await http.post(f"/v1/chats/{chat_id}/messages", json=body, headers=ada)
                posted.raise_for_status()
                await seen(f"rest {i}")
                rest.append((time.perf_counter() - started) * 1000)
            # another sender, so each door has the per-agent message burst to itself
            cy = {"Authorization": f"Bearer {tokens['cy']}"}
            client_http = httpx2.AsyncClient(headers=cy, timeout=30)
            transport = streamable_http_client(f"{api_url}/mcp/", http_client=client_http)
            over_mcp = []
            async with Client(transport) as client:
                for i in range(posts):
                    started = time.perf_counter()
                    args = {"chat_id": chat_id, "content": f"mcp {i}", "idempotency_key": f"{i}"}
                    result = await client.call_tool("post_message", args)
                    if result.is_error:
                        raise RuntimeError(result.content[0].text)
                    await seen(f"mcp {i}")
                    over_mcp.append((time.perf_counter() - started) * 1000)
        await http.delete(f"/v1/chats/{chat_id}", headers=admin)
    return {
        "posts_each": posts,
        "rest_post_to_reader_stream": _quantiles(rest),
        "mcp_post_message_to_reader_stream": _quantiles(over_mcp),
        "note": "one post at a time (within the per-agent burst of 30), each timed from "
        "the call to the event on the other member's WebSocket stream; MCP's tool calls "
        "the REST API in process",
    }


async def a2a_round_trips(env: dict[str, str], asks: int = 15) -> dict:
    """A question to a hosted agent until its answer: REST post → the reply on the
    caller's stream, against A2A ``SendMessage`` (blocking) → the completed task."""
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

    api_url, admin = env["AGORA_API_URL"], {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        tokens = {}
        hosted = {"brain": {"turns_per_hour": 10_000}}
        for name, extra in (("ada", {}), ("cy", {}), ("host", hosted)):
            body = {"agent_id": f"ask-{name}-{run}", "name": name} | extra
            made = await http.post("/v1/agents", json=body, headers=admin)
            made.raise_for_status()
            tokens[name] = made.json()["token"]
        host_id = f"ask-host-{run}"
        ada = {"Authorization": f"Bearer {tokens['ada']}"}
        chat = await http.post(
            "/v1/chats", json={"type": "direct", "participants": [host_id]}, headers=ada
        )
        chat.raise_for_status()
        chat_id = chat.json()["chat_id"]
        stream_url = api_url.replace("http", "ws", 1) + f"/v1/agents/ask-ada-{run}/stream"
        rest = []
        async with websockets.connect(stream_url, additional_headers=ada) as stream:
            for i in range(asks):
                started = time.perf_counter()
                body = {"content": f"question {i}"}
                posted = await http.post(f"/v1/chats/{chat_id}/messages", json=body, headers=ada)
                posted.raise_for_status()
                while True:
                    event = json.loads(await asyncio.wait_for(stream.recv(), 30))
                    message = event.get("payload", {}).get("message") or {}
                    if event["type"] == "message.sent" and message.get("from") == host_id:
                        break
                rest.append((time.perf_counter() - started) * 1000)
        over_a2a = []
        cy = {"Authorization": f"Bearer {tokens['cy']}"}
        async with httpx.AsyncClient(headers=cy, timeout=30) as a2a_http:
            config = ClientConfig(httpx_client=a2a_http, streaming=False)
            client = await create_client(f"{api_url}/a2a/{host_id}", client_config=config)
            for i in range(asks):
                message = Message(
                    role=Role.ROLE_USER, message_id=f"{run}-{i}", parts=[Part(text=f"question {i}")]
                )
                started = time.perf_counter()
                request = SendMessageRequest(message=message)
                [answer] = [r async for r in client.send_message(request)]
                if answer.task.status.state != TaskState.TASK_STATE_COMPLETED:
                    raise RuntimeError(f"A2A task ended {answer.task.status.state}")
                over_a2a.append((time.perf_counter() - started) * 1000)
            await client.close()
    return {
        "asks_each": asks,
        "rest_post_to_hosted_reply_on_stream": _quantiles(rest),
        "a2a_send_message_to_completed_task": _quantiles(over_a2a),
        "note": "one question at a time to a hosted agent with the offline model; A2A "
        "posts through the REST API in process and waits for the reply on the event bus",
    }


if __name__ == "__main__":
    from cli.stack import PROJECT_ROOT, Stack

    env = Stack.load(PROJECT_ROOT / ".agora").env()
    figures = {"doors": asyncio.run(doors(env)), "a2a": asyncio.run(a2a_round_trips(env))}
    print(json.dumps(figures, indent=2))
    print("reproduce: make up && .venv/bin/python -m bench.protocols")
