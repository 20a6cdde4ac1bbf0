"""The MCP door: the mcp SDK's own client over streamable HTTP, acting as an agent."""

from __future__ import annotations

import json

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import eventually
from tests.helpers import group, in_seconds, introduce


def as_agent(server: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{server}/mcp/", http_client=http))


def data(result) -> dict:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def test_an_mcp_client_acts_as_its_agent_with_the_same_rules_as_rest(server, admin):
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        ada, bob, cy = [await introduce(http, admin, n) for n in ("Ada", "Bob", "Cy")]
        chat = await group(http, ada, bob, topic="mcp room", speaker_policy="fifo")
        async with as_agent(server, ada.token) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"post_message", "read_messages", "request_floor", "find_agents"} <= names
            me = data(await client.call_tool("read_manifest", {}))
            assert me["agent_id"] == ada.agent_id
            # the floor rule holds over MCP as over REST, with the same reason
            refused = await client.call_tool(
                "post_message", {"chat_id": chat["chat_id"], "content": "too soon"}
            )
            assert refused.is_error and "409" in refused.content[0].text
            assert "floor" in refused.content[0].text
            floor = data(await client.call_tool("request_floor", {"chat_id": chat["chat_id"]}))
            assert floor["current_speaker"] == ada.agent_id
            args = {
                "chat_id": chat["chat_id"],
                "content": "hello over MCP",
                "idempotency_key": "mcp-1",
            }
            first = data(await client.call_tool("post_message", args))
            again = data(await client.call_tool("post_message", args))
            assert first["seq"] == again["seq"]  # the retry was the same post
            page = data(await client.call_tool("read_messages", {"chat_id": chat["chat_id"]}))
            assert [m["content"] for m in page["items"]] == ["hello over MCP"]
            transcript = await client.read_resource(f"agora://rooms/{chat['chat_id']}/transcript")
            assert "hello over MCP" in transcript.contents[0].text

        # bob reads it through REST: one message, from ada
        async def bobs_page():
            response = await http.get(f"/v1/chats/{chat['chat_id']}/messages", headers=bob.headers)
            return response.json()["items"]

        items = await eventually(bobs_page, lambda xs: len(xs) == 1)
        assert items[0]["from"] == ada.agent_id

        # bob pulls his next events over MCP: ada's post is there, live, without a stream
        async with as_agent(server, bob.token) as client:
            polled = data(await client.call_tool("wait_for_events", {"wait_seconds": 5}))
            sent = [e for e in polled["events"] if e["type"] == "message.sent"]
            assert [e["payload"]["message"]["content"] for e in sent] == ["hello over MCP"]
            again = data(await client.call_tool("wait_for_events", {"wait_seconds": 0}))
            assert [e for e in again["events"] if e["type"] == "message.sent"] == []

        # a stranger's MCP client sees no private room, and is told so as REST tells it
        async with as_agent(server, cy.token) as client:
            hidden = await client.call_tool("read_messages", {"chat_id": chat["chat_id"]})
            assert hidden.is_error and "404" in hidden.content[0].text

        # no token: refused before any MCP message is read; the call is audited as REST's
        anonymous = await http.post("/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert anonymous.status_code == 401
        audit = await http.get(
            "/v1/audit", params={"actor": f"agent:{ada.agent_id}", "limit": 100}, headers=admin
        )
        actions = {r["action"] for r in audit.json()["items"]}
        assert "POST /v1/chats/{chat_id}/messages" in actions


async def test_agora_mcp_serves_the_same_tools_over_stdio(server, admin):
    import os
    import sys

    from mcp import StdioServerParameters

    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        ada = await introduce(http, admin, "Ada")
    env = dict(os.environ) | {"AGORA_TOKEN": ada.token, "AGORA_API_URL": server}
    params = StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "mcp"], env=env)
    async with Client(params) as client:
        me = data(await client.call_tool("read_manifest", {}))
    assert me["agent_id"] == ada.agent_id


async def test_every_tool_a_stranger_calls_is_refused_as_rest_refuses_it(server, admin):
    """One rule for both doors: the same call as a stranger through MCP and through REST
    gets the same status and reason, and changes nothing."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        ada, bob, cy = [await introduce(http, admin, n) for n in ("Ada", "Bob", "Cy")]
        chat = await group(http, ada, bob, topic="ours", join_rule="invite", speaker_policy="fifo")
        await http.post(f"/v1/accounts/{ada.agent_id}/mint", json={"amount": 10}, headers=admin)
        await http.post("/v1/skills", json={"name": "rare_skill_x"}, headers=admin)
        task = await http.post(
            "/v1/tasks",
            json={
                "title": "t",
                "reward": 10,
                "deadline": in_seconds(3600),
                "skills_required": ["rare_skill_x"],
            },
            headers=ada.headers,
        )
        assert task.status_code == 201, task.text
        task_id = task.json()["task_id"]
        room = chat["chat_id"]
        calls = [
            ("read_messages", {"chat_id": room}, "GET", f"/v1/chats/{room}/messages", None),
            (
                "post_message",
                {"chat_id": room, "content": "hi"},
                "POST",
                f"/v1/chats/{room}/messages",
                {"content": "hi"},
            ),
            (
                "request_floor",
                {"chat_id": room},
                "POST",
                f"/v1/chats/{room}/floor",
                {"priority": 0},
            ),
            ("yield_floor", {"chat_id": room}, "DELETE", f"/v1/chats/{room}/floor", None),
            (
                "submit_task",
                {"task_id": task_id, "result": "mine"},
                "POST",
                f"/v1/tasks/{task_id}/submit",
                {"result": "mine"},
            ),
            (
                "bid_on_task",
                {"task_id": task_id, "price": 5},
                "POST",
                f"/v1/tasks/{task_id}/bids",
                {"price": 5, "note": ""},
            ),
        ]
        async with as_agent(server, cy.token) as client:
            for tool, args, method, path, body in calls:
                via_mcp = await client.call_tool(tool, args)
                via_rest = await http.request(method, path, json=body, headers=cy.headers)
                assert via_rest.status_code in (403, 404, 409), (tool, via_rest.text)
                expected = f"{via_rest.status_code}: {via_rest.json()['detail']}"
                # the SDK names the tool before the reason: "Error executing tool ...: <reason>"
                assert via_mcp.is_error and via_mcp.content[0].text.endswith(expected), tool
        page = await http.get(f"/v1/chats/{room}/messages", headers=ada.headers)
        assert page.json()["items"] == []
        unchanged = await http.get(f"/v1/tasks/{task_id}", headers=ada.headers)
        assert unchanged.json()["bids"] == [] and unchanged.json()["status"] == "open"
