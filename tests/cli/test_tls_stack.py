"""``agora up --tls`` (``AGORA_LOCAL_TLS=1``): the whole local stack on TLS with a throwaway CA."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import uuid

import aio_pika
import httpx
import pytest
import websockets
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from cli.stack import Ports, Stack
from tests.conftest import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("tls"), Ports.free(), with_ui=False, tls=True)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


async def test_the_stack_on_tls_carries_a_message_end_to_end(tls_stack: Stack):
    env = tls_stack.env()
    # 'up' returned only once the worker polled its task queues, so the first call is served
    assert tls_stack.worker_ready_file.read_text() == str(tls_stack.owned_pid("worker"))
    assert env["AGORA_API_URL"].startswith("https://")
    assert env["AGORA_AMQP_URL"].startswith("amqps://")
    assert (
        "tls=true" in env["AGORA_MONGODB_URI"] and "authMechanism=SCRAM" in env["AGORA_MONGODB_URI"]
    )
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    context = ssl.create_default_context(cafile=env["AGORA_TLS_CA_FILE"])
    async with httpx.AsyncClient(base_url=env["AGORA_API_URL"], verify=context, timeout=30) as api:
        assert (await api.get("/readyz")).status_code == 200
        agents = []
        for name in ("Tess", "Lee"):
            created = await api.post(
                "/v1/agents",
                json={"agent_id": f"{name.lower()}-{uuid.uuid4().hex[:6]}", "name": name},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            agents.append(created.json())
        tess, lee = agents
        lee_headers = {"Authorization": f"Bearer {lee['token']}"}
        stream_url = env["AGORA_API_URL"].replace("https", "wss", 1)
        stream_url += f"/v1/agents/{lee['agent_id']}/stream"
        async with websockets.connect(
            stream_url, additional_headers=lee_headers, ssl=context
        ) as ws:
            chat = await api.post(
                "/v1/chats",
                json={"type": "direct", "participants": [lee["agent_id"]]},
                headers={"Authorization": f"Bearer {tess['token']}"},
            )
            assert chat.status_code == 201
            chat_id = chat.json()["chat_id"]
            posted = await api.post(
                f"/v1/chats/{chat_id}/messages",
                json={"content": "over TLS all the way"},
                headers={"Authorization": f"Bearer {tess['token']}"},
            )
            assert posted.status_code == 201
            # the event came through RabbitMQ on AMQPS to the stream on WSS
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if event["type"] == "message.sent":
                    break
            assert event["payload"]["message"]["content"] == "over TLS all the way"
        # and it was stored in MongoDB (here FerretDB, telemetry disabled) over TLS with SCRAM
        page = await eventually(
            lambda: api.get(f"/v1/chats/{chat_id}/messages", headers=lee_headers),
            lambda r: r.status_code == 200 and len(r.json()["items"]) == 1,
        )
        assert page.json()["items"][0]["content"] == "over TLS all the way"

    # plain HTTP to the API is not served
    with pytest.raises(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=5) as plain:
            await plain.get(f"http://127.0.0.1:{tls_stack.ports.api}/healthz")


async def test_the_stack_on_tls_refuses_plain_and_unauthenticated_clients(tls_stack: Stack):
    env = tls_stack.env()
    port, ca = tls_stack.ports.mongodb, env["AGORA_TLS_CA_FILE"]
    password = re.search(r"agora:([^@]+)@", env["AGORA_MONGODB_URI"]).group(1)

    async def list_collections(uri: str):
        client = AsyncMongoClient(uri, serverSelectionTimeoutMS=2000)
        try:
            return await client["agora"].list_collection_names()
        finally:
            await client.close()

    assert "agents" in await list_collections(env["AGORA_MONGODB_URI"])
    with pytest.raises(PyMongoError):  # no TLS: the listener speaks only TLS
        await list_collections(f"mongodb://127.0.0.1:{port}/")
    with pytest.raises(OperationFailure, match="requires authentication"):
        await list_collections(f"mongodb://127.0.0.1:{port}/?tls=true&tlsCAFile={ca}")
    with pytest.raises(OperationFailure, match="Authentication failed"):
        await list_collections(env["AGORA_MONGODB_URI"].replace(password, "not-the-password"))

    amqps = await aio_pika.connect(env["AGORA_AMQP_URL"], timeout=10)
    await amqps.close()
    with pytest.raises(Exception):  # noqa: B017 - any failure to connect will do
        await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{tls_stack.ports.amqp}/", timeout=5)
