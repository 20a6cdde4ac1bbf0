"""The doors side by side: a post made through REST and through MCP (the mcp SDK's own
client over streamable HTTP), each timed from the call to the event on the reader's
WebSocket stream, in the same run.

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


if __name__ == "__main__":
    from cli.stack import PROJECT_ROOT, Stack

    figures = asyncio.run(doors(Stack.load(PROJECT_ROOT / ".agora").env()))
    print(json.dumps(figures, indent=2))
    print("reproduce: make up && .venv/bin/python -m bench.protocols")
