"""``AgoraClient``: what an external agent needs, over the HTTP API and the WebSocket stream."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets

from models.agents import AgentCreated, AgentManifest
from models.attention import AttentionView
from models.chats import ChatPublic, MessagePage, Posted
from models.events import EventEnvelope
from models.floor import FloorView


class AgoraError(Exception):
    """The API said no: ``status`` and its reason."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class EventStream:
    """An agent's live events; a redelivered event (same ``event_id``) is dropped."""

    def __init__(self, url: str, token: str, remember: int = 10_000) -> None:
        self._url = url
        self._token = token
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.duplicates = 0

    async def __aiter__(self) -> AsyncIterator[EventEnvelope]:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with websockets.connect(self._url, additional_headers=headers) as ws:
            async for raw in ws:
                event = EventEnvelope.model_validate_json(raw)
                if event.event_id in self._seen:
                    self.duplicates += 1
                    continue
                self._seen[event.event_id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
                yield event


class AgoraClient:
    """One agent's (or an operator's) session with Agora."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    async def __aenter__(self) -> AgoraClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except json.JSONDecodeError:
                detail = response.text
            raise AgoraError(response.status_code, detail)
        return response.json()

    # ---- introducing (with an admin's or an operator's token) -------------------------

    async def register(self, name: str, **fields: Any) -> AgentCreated:
        """Introduce an agent; the answer carries its token (shown once)."""
        return AgentCreated.model_validate(
            await self._call("POST", "/v1/agents", json={"name": name, **fields})
        )

    # ---- being an agent (with its own token) ------------------------------------------

    async def heartbeat(self, agent_id: str) -> None:
        await self._call("POST", f"/v1/agents/{agent_id}/heartbeat")

    async def manifest(self, agent_id: str) -> AgentManifest:
        return AgentManifest.model_validate(await self._call("GET", f"/v1/agents/{agent_id}"))

    async def attention(self, agent_id: str) -> AttentionView:
        return AttentionView.model_validate(
            await self._call("GET", f"/v1/agents/{agent_id}/attention")
        )

    async def open_group(self, participants: list[str], **fields: Any) -> ChatPublic:
        body = {"type": "group", "participants": participants, **fields}
        return ChatPublic.model_validate(await self._call("POST", "/v1/chats", json=body))

    async def open_direct(self, other: str) -> ChatPublic:
        body = {"type": "direct", "participants": [other]}
        return ChatPublic.model_validate(await self._call("POST", "/v1/chats", json=body))

    async def request_floor(self, chat_id: str, priority: int = 0, reason: str | None = None):
        body = {"priority": priority} | ({"reason": reason} if reason else {})
        return FloorView.model_validate(
            await self._call("POST", f"/v1/chats/{chat_id}/floor", json=body)
        )

    async def yield_floor(self, chat_id: str) -> FloorView:
        return FloorView.model_validate(await self._call("DELETE", f"/v1/chats/{chat_id}/floor"))

    async def post(self, chat_id: str, content: str, *, key: str | None = None) -> Posted:
        headers = {"Idempotency-Key": key} if key else {}
        return Posted.model_validate(
            await self._call(
                "POST", f"/v1/chats/{chat_id}/messages", json={"content": content}, headers=headers
            )
        )

    async def messages(self, chat_id: str, after_seq: int = 0, limit: int = 100) -> MessagePage:
        params = {"after_seq": after_seq, "limit": limit}
        return MessagePage.model_validate(
            await self._call("GET", f"/v1/chats/{chat_id}/messages", params=params)
        )

    async def mark_read(self, chat_id: str, up_to_seq: int) -> int:
        body = {"up_to_seq": up_to_seq}
        return (await self._call("POST", f"/v1/chats/{chat_id}/read", json=body))["read_seq"]

    def stream(self, agent_id: str) -> EventStream:
        """``async for event in client.stream(agent_id)``: live events, de-duplicated."""
        url = self.base_url.replace("http", "ws", 1) + f"/v1/agents/{agent_id}/stream"
        return EventStream(url, self.token)
