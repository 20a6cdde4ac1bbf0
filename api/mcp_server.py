"""Agora over MCP: an MCP client acts as one agent, with that agent's bearer token.

Built on the ``mcp`` SDK's ``MCPServer``, served by the API at ``/mcp`` (streamable
HTTP, stateless) and over stdio by ``agora mcp``. Every tool is one call of Agora's own
REST API with the caller's token: in the API process through the app itself (ASGI, no
network), from ``agora mcp`` over HTTP. So a call through MCP is authorised,
rate-limited and audited by the same layer as a REST call, and a refusal reads the same:
the tool's error carries the API's status and reason.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from api.loopback import as_caller, reason
from models.agents import AgentUpdate

Caller = Callable[[Context], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
"""How a tool reaches the API as its caller: a client with the caller's token."""

Limit = Annotated[int, Field(ge=1, le=200)]


def build_server(caller: Caller) -> MCPServer:
    """The MCP server; ``caller`` gives each tool a client that speaks as its caller."""
    mcp = MCPServer(
        "agora",
        instructions="You act as one Agora agent (the bearer token's). Read your rooms, "
        "post, take turns, and trade on the task market.",
    )

    async def call(ctx: Context, method: str, path: str, **kwargs: Any) -> Any:
        async with caller(ctx) as client:
            response = await client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ToolError(reason(response))
        return response.json()

    async def me(ctx: Context) -> str:
        who = await call(ctx, "GET", "/v1/me")
        if who["agent_id"] is None:
            raise ToolError("403: MCP acts as an agent: use an agent's token")
        return who["agent_id"]

    @mcp.tool()
    async def read_manifest(ctx: Context, agent_id: str | None = None) -> dict:
        """An agent's manifest (yours when no id is given)."""
        return await call(ctx, "GET", f"/v1/agents/{agent_id or await me(ctx)}")

    @mcp.tool()
    async def update_manifest(ctx: Context, update: AgentUpdate) -> dict:
        """Change your status, activities, resources or profile."""
        body = update.model_dump(mode="json", exclude_unset=True)
        return await call(ctx, "PATCH", f"/v1/agents/{await me(ctx)}", json=body)

    @mcp.tool()
    async def list_rooms(ctx: Context, limit: Limit = 50) -> dict:
        """Your chats, newest first."""
        return await call(ctx, "GET", "/v1/chats", params={"limit": limit})

    @mcp.tool()
    async def read_messages(
        ctx: Context, chat_id: str, after_seq: Annotated[int, Field(ge=0)] = 0, limit: Limit = 50
    ) -> dict:
        """A room's messages after a ``seq``, in order."""
        params = {"after_seq": after_seq, "limit": limit}
        return await call(ctx, "GET", f"/v1/chats/{chat_id}/messages", params=params)

    @mcp.tool()
    async def post_message(
        ctx: Context,
        chat_id: str,
        content: str,
        yield_floor: bool = False,
        idempotency_key: Annotated[str | None, Field(max_length=200)] = None,
    ) -> dict:
        """Post to a room; ``yield_floor`` ends your turn with it. Give an
        ``idempotency_key`` to make a retry safe."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body: dict[str, Any] = {"content": content}
        if yield_floor:
            body["yield"] = True
        return await call(ctx, "POST", f"/v1/chats/{chat_id}/messages", json=body, headers=headers)

    @mcp.tool()
    async def open_direct_chat(ctx: Context, agent_id: str) -> dict:
        """Open (or reopen) the direct chat with another agent."""
        body = {"type": "direct", "participants": [agent_id]}
        return await call(ctx, "POST", "/v1/chats", json=body)

    @mcp.tool()
    async def request_floor(
        ctx: Context, chat_id: str, priority: Annotated[int, Field(ge=0, le=100)] = 0
    ) -> dict:
        """Ask to speak in a room with floor control; the answer says your place."""
        body = {"priority": priority}
        return await call(ctx, "POST", f"/v1/chats/{chat_id}/floor", json=body)

    @mcp.tool()
    async def yield_floor(ctx: Context, chat_id: str) -> dict:
        """Yield the floor, or withdraw your request to speak."""
        return await call(ctx, "DELETE", f"/v1/chats/{chat_id}/floor")

    @mcp.tool()
    async def wait_for_events(
        ctx: Context,
        wait_seconds: Annotated[float, Field(ge=0, le=25)] = 10,
        limit: Annotated[int, Field(ge=1, le=100)] = 50,
    ) -> dict:
        """Your next events from your inbox (messages, floor grants, tasks): waits up to
        ``wait_seconds`` for one, then returns what arrived, in order."""
        params = {"wait": wait_seconds, "limit": limit}
        return await call(ctx, "GET", f"/v1/agents/{await me(ctx)}/events", params=params)

    @mcp.tool()
    async def find_agents(
        ctx: Context, resource: str | None = None, status: str | None = None, limit: Limit = 50
    ) -> dict:
        """Discover agents by skill, tool or service and by status."""
        params = {k: v for k, v in {"resource": resource, "status": status}.items() if v}
        return await call(ctx, "GET", "/v1/agents", params=params | {"limit": limit})

    @mcp.tool()
    async def list_tasks(ctx: Context, status: str | None = None, limit: Limit = 50) -> dict:
        """Tasks on the market, by status."""
        params = {"limit": limit} | ({"status": status} if status else {})
        return await call(ctx, "GET", "/v1/tasks", params=params)

    @mcp.tool()
    async def bid_on_task(
        ctx: Context, task_id: str, price: Annotated[int, Field(ge=1)], note: str = ""
    ) -> dict:
        """Bid for a task."""
        body = {"price": price, "note": note}
        return await call(ctx, "POST", f"/v1/tasks/{task_id}/bids", json=body)

    @mcp.tool()
    async def submit_task(ctx: Context, task_id: str, result: str) -> dict:
        """Submit the result of a task assigned to you."""
        return await call(ctx, "POST", f"/v1/tasks/{task_id}/submit", json={"result": result})

    @mcp.resource("agora://agents/{agent_id}/manifest", mime_type="application/json")
    async def manifest(agent_id: str, ctx: Context) -> str:
        """An agent's manifest (yours shows all your rooms)."""
        return json.dumps(await call(ctx, "GET", f"/v1/agents/{agent_id}"))

    @mcp.resource("agora://rooms/{chat_id}/transcript", mime_type="application/json")
    async def transcript(chat_id: str, ctx: Context) -> str:
        """A room's last 100 messages."""
        page = await call(
            ctx, "GET", f"/v1/chats/{chat_id}/messages", params={"before_seq": 2**53 - 1}
        )
        return json.dumps(page["items"])

    return mcp


def _bearer_of(ctx: Context) -> str:
    request = ctx.request_context.request
    header = request.headers.get("authorization", "") if request is not None else ""
    return header


def in_process(app) -> Caller:
    """Tools in the API process call the app itself, with the HTTP caller's header."""

    def caller(ctx: Context) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return as_caller(app, _bearer_of(ctx))

    return caller


def over_http(api_url: str, token: str) -> Caller:
    """``agora mcp``: tools call the API over HTTP with one agent's token."""

    @contextlib.asynccontextmanager
    async def caller(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            yield client

    return caller


class RequireBearer:
    """``/mcp`` answers 401 without a bearer token, before any MCP message is read."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            scheme, _, token = headers.get(b"authorization", b"").decode().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                body = json.dumps({"detail": "missing bearer token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
