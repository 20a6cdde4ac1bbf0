"""A2A agents as members: an a2a-sdk server, introduced by its card, takes its turns in
a round-robin room with two hosted agents and answers in a direct chat; a card that
cannot be used refuses the introduction, and a remote that fails yields its turn."""

from __future__ import annotations

import contextlib

import pytest
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.a2a.remote import CardRefused, read_card
from cli.stack import free_port
from tests.conftest import eventually
from tests.helpers import group, introduce, served_on_loopback


class Echo(AgentExecutor):
    """Answers with how many lines it was sent and the last one; or fails, on request."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.heard: list[str] = []

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        self.heard.append(text)
        await event_queue.enqueue_event(
            Task(
                id=context.task_id,
                context_id=context.context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message],
            )
        )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if self.fail:
            await updater.failed()
            return
        last = text.splitlines()[-1] if text else ""
        await updater.add_artifact([Part(text=f"remote heard {len(text.splitlines())}: {last}")])
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


@contextlib.asynccontextmanager
async def remote_agent(fail: bool = False):
    """An a2a-sdk server on 127.0.0.1: (its card URL, its executor)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="Echo",
        description="A remote agent that echoes",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        supported_interfaces=[
            AgentInterface(
                url=f"{base}/rpc",
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            )
        ],
        skills=[AgentSkill(id="echo", name="echo", description="echoes", tags=["echo"])],
    )
    executor = Echo(fail)
    handler = DefaultRequestHandler(executor, InMemoryTaskStore(), card)
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/rpc"),
        Route("/garbage.json", lambda r: JSONResponse([1, 2, 3])),
    ]
    async with served_on_loopback(Starlette(routes=routes), port):
        yield f"{base}/.well-known/agent-card.json", executor


async def test_a_remote_a2a_agent_takes_its_turns_with_two_hosted_agents(api, admin):
    async with remote_agent() as (card_url, echo):
        remote = await introduce(api, admin, "Echo", remote={"a2a_card_url": card_url})
        manifest = (await api.get(f"/v1/agents/{remote.agent_id}", headers=admin)).json()
        assert manifest["public_profile"]["bio"] == "A remote agent that echoes"
        hosts = [
            await introduce(api, admin, f"H{i}", brain={"turns_per_hour": 1000}) for i in range(2)
        ]
        ext = await introduce(api, admin, "Ext")
        room = await group(
            api,
            ext,
            hosts[0],
            remote,
            hosts[1],
            speaker_policy="round_robin",
            floor={"max_messages_per_turn": 1},
        )
        cid = room["chat_id"]
        await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
        await api.post(
            f"/v1/chats/{cid}/messages", json={"content": "go", "yield": True}, headers=ext.headers
        )

        async def page():
            return (await api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)).json()

        done = await eventually(page, lambda p: len(p["items"]) >= 7, timeout=60)
        await api.delete(f"/v1/chats/{cid}", headers=ext.headers)
        said = done["items"]
        by_remote = [m for m in said if m["from"] == remote.agent_id]
        assert len(by_remote) >= 2
        # its answer is posted as that agent, made from the recent transcript it was sent
        assert by_remote[0]["content"].startswith("remote heard ")
        assert "go" in echo.heard[0]
        # it speaks in its place in each round
        speakers = [m["from"] for m in said[1:]]
        assert set(speakers[:3]) == {hosts[0].agent_id, remote.agent_id, hosts[1].agent_id}
        assert speakers[:6] == speakers[:3] * 2

        # a direct message to it is answered by it
        chat = await api.post(
            "/v1/chats",
            json={"type": "direct", "participants": [remote.agent_id]},
            headers=ext.headers,
        )
        dm = chat.json()["chat_id"]
        await api.post(f"/v1/chats/{dm}/messages", json={"content": "hi"}, headers=ext.headers)
        answered = await eventually(
            lambda: api.get(f"/v1/chats/{dm}/messages", headers=ext.headers),
            lambda r: len(r.json()["items"]) == 2,
            timeout=30,
        )
        assert answered.json()["items"][1]["content"] == "remote heard 1: [" + ext.agent_id + "] hi"


async def test_a_failing_remote_yields_its_turn_and_a_bad_card_refuses_the_introduction(
    api, admin, settings
):
    async with remote_agent(fail=True) as (card_url, _):
        broken = await introduce(api, admin, "Broken", remote={"a2a_card_url": card_url})
        other, ext = await introduce(api, admin, "Oth"), await introduce(api, admin, "Ext")
        room = await group(api, ext, broken, other, speaker_policy="fifo")
        cid = room["chat_id"]
        await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
        await api.post(
            f"/v1/chats/{cid}/messages", json={"content": "you first, @Broken"}, headers=ext.headers
        )
        await eventually(
            lambda: api.get(f"/v1/chats/{cid}/floor", headers=ext.headers),
            lambda r: broken.agent_id in [q["agent_id"] for q in r.json()["queue"]],
        )
        await api.post(f"/v1/chats/{cid}/floor", json={}, headers=other.headers)
        await api.delete(f"/v1/chats/{cid}/floor", headers=ext.headers)
        # the remote gets the floor, fails, and yields: the room moves on to the next
        moved = await eventually(
            lambda: api.get(f"/v1/chats/{cid}/floor", headers=ext.headers),
            lambda r: r.json()["current_speaker"] == other.agent_id,
            timeout=60,
        )
        assert moved.status_code == 200
        page = (await api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)).json()
        assert broken.agent_id not in {m["from"] for m in page["items"]}

        base = card_url.removesuffix("/.well-known/agent-card.json")
        for url, reason in [
            ("http://10.20.30.40/.well-known/agent-card.json", "not in a2a_allowed_hosts"),
            (f"http://127.0.0.1:{free_port()}/card.json", "could not be fetched"),
            (f"{base}/nowhere.json", "HTTP 404"),
            (f"{base}/garbage.json", "not an A2A agent card"),
        ]:
            refused = await api.post(
                "/v1/agents", json={"name": "Nope", "remote": {"a2a_card_url": url}}, headers=admin
            )
            assert refused.status_code == 422, refused.text
            [problem] = refused.json()["detail"]
            assert problem["loc"] == ["body", "remote", "a2a_card_url"]
            assert reason in problem["msg"]
        strict = settings.model_copy(update={"a2a_require_signed_cards": True})
        with pytest.raises(CardRefused, match="unsigned"):
            await read_card(card_url, strict)
        both = await api.post(
            "/v1/agents",
            json={"name": "Two", "brain": {}, "remote": {"a2a_card_url": card_url}},
            headers=admin,
        )
        assert both.status_code == 422 and "not both" in both.text
