"""Live delivery over the WebSocket stream, offline delivery on reconnect, and receipts."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from tests.conftest import eventually
from tests.helpers import Stream, group, introduce


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


async def test_members_receive_messages_live_and_what_they_missed_on_reconnect(http, server, admin):
    ada, bob, cy = [await introduce(http, admin, n) for n in ("Ada", "Bob", "Cy")]
    async with Stream(server, bob) as stream:
        chat = await group(http, ada, bob, cy, topic="live")
        created = await stream.until(lambda e: e["type"] == "chat.created")
        assert created[-1]["payload"]["chat"]["chat_id"] == chat["chat_id"]
        base = f"/v1/chats/{chat['chat_id']}/messages"
        await http.post(base, json={"content": "hello bob"}, headers=ada.headers)
        got = (await stream.until(lambda e: e["type"] == "message.sent"))[-1]
        assert got["payload"]["message"]["content"] == "hello bob"
        assert got["payload"]["message"]["from"] == ada.agent_id
        assert {"event_id", "type", "version", "occurred_at", "correlation_id"} <= set(got)

    # bob is away: three messages wait in his durable inbox
    for i in range(3):
        await http.post(base, json={"content": f"while away {i}"}, headers=ada.headers)
    async with Stream(server, bob) as stream:
        seen = await stream.until(
            lambda e: (
                e["type"] == "message.sent" and e["payload"]["message"]["content"] == "while away 2"
            )
        )
    missed = [e["payload"]["message"] for e in seen if e["type"] == "message.sent"]
    assert [m["content"] for m in missed] == [f"while away {i}" for i in range(3)]
    assert [m["seq"] for m in missed] == [2, 3, 4]


async def test_receipts_go_sent_delivered_read(http, server, admin):
    ada, bob = await introduce(http, admin, "Ada"), await introduce(http, admin, "Bob")
    chat = (
        await http.post(
            "/v1/chats",
            json={"type": "direct", "participants": [bob.agent_id]},
            headers=ada.headers,
        )
    ).json()
    base = f"/v1/chats/{chat['chat_id']}"
    await http.post(base + "/messages", json={"content": "one"}, headers=ada.headers)

    async def receipt() -> str | None:
        page = (await http.get(base + "/messages", headers=ada.headers)).json()
        return page["items"][0]["receipts"][bob.agent_id] if page["items"] else None

    assert await eventually(receipt, lambda r: r is not None) == "sent"
    async with Stream(server, bob) as stream:
        await stream.until(lambda e: e["type"] == "message.sent")
        assert await eventually(receipt, lambda r: r == "delivered") == "delivered"
    marked = await http.post(base + "/read", json={"up_to_seq": 1}, headers=bob.headers)
    assert marked.json() == {"read_seq": 1}
    assert await eventually(receipt, lambda r: r == "read") == "read"
    # bob's view of his own receipts is not shown on ada's messages
    bobs = (await http.get(base + "/messages", headers=bob.headers)).json()
    assert bobs["items"][0]["receipts"] is None
    too_far = await http.post(base + "/read", json={"up_to_seq": 5}, headers=bob.headers)
    assert too_far.status_code == 422


async def test_a_stream_is_the_agents_own_and_one_at_a_time(http, server, admin):
    ada, bob = await introduce(http, admin, "Ada"), await introduce(http, admin, "Bob")
    url = server.replace("http", "ws", 1) + f"/v1/agents/{ada.agent_id}/stream"
    for headers, code in (({}, 4401), (bob.headers, 4403), ({"Authorization": "Bearer x"}, 4401)):
        async with websockets.connect(url, additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == code
    ticket = await http.post(f"/v1/agents/{ada.agent_id}/stream-ticket", headers=ada.headers)
    assert ticket.status_code == 201, ticket.text
    second_url = f"{url}?ticket={ticket.json()['ticket']}"
    async with Stream(server, ada), websockets.connect(second_url) as second:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await second.recv()
        assert closed.value.rcvd.code == 4409


async def test_a_long_poll_takes_the_inbox_in_order_one_reader_at_a_time(http, server, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    chat = await group(http, ada, bob, topic="poll")
    base = f"/v1/chats/{chat['chat_id']}/messages"
    for i in range(3):
        await http.post(base, json={"content": f"p{i}"}, headers=ada.headers)
    polled = await http.get(
        f"/v1/agents/{bob.agent_id}/events", params={"wait": 5}, headers=bob.headers
    )
    assert polled.status_code == 200, polled.text
    sent = [e for e in polled.json()["events"] if e["type"] == "message.sent"]
    assert [e["payload"]["message"]["content"] for e in sent] == ["p0", "p1", "p2"]
    path = f"/v1/agents/{bob.agent_id}/events"
    assert (await http.get(path, headers=ada.headers)).status_code == 403
    assert (await http.get(path, params={"wait": 60}, headers=bob.headers)).status_code == 422
    async with Stream(server, bob):
        busy = await http.get(path, params={"wait": 0}, headers=bob.headers)
    assert busy.status_code == 409 and "another stream" in busy.json()["detail"]


async def test_a_stream_sends_its_events_uncompressed_though_the_client_offers_deflate(
    http, server, admin
):
    ada, bob = await introduce(http, admin, "Ada"), await introduce(http, admin, "Bob")
    chat = await group(http, ada, bob, topic="plain")
    async with Stream(server, bob) as stream:
        # websockets offers permessage-deflate unless told not to; the API declines it
        assert "permessage-deflate" in stream.connection.request.headers["Sec-WebSocket-Extensions"]
        assert stream.connection.response.headers.get("Sec-WebSocket-Extensions") is None
        await http.post(
            f"/v1/chats/{chat['chat_id']}/messages", json={"content": "hi"}, headers=ada.headers
        )
        got = (await stream.until(lambda e: e["type"] == "message.sent"))[-1]
        assert got["payload"]["message"]["content"] == "hi"


async def test_a_stream_whose_acknowledgement_never_leaves_ends_and_loses_nothing(
    http, server, admin, monkeypatch
):
    """An acknowledgement put on a connection that died as it was written waits for ever
    (seen through a RabbitMQ restart): the stream ends with 1012 instead of going silent,
    and the event it could not acknowledge comes again on the next stream."""
    import aio_pika.message

    import bus.inbox

    ada, bob = await introduce(http, admin, "Ada"), await introduce(http, admin, "Bob")
    chat = await group(http, ada, bob, topic="stuck ack")
    base = f"/v1/chats/{chat['chat_id']}/messages"
    monkeypatch.setattr(bus.inbox, "SETTLE_SECONDS", 0.5)
    real_ack, never = aio_pika.message.IncomingMessage.ack, asyncio.Event()

    async def ack(message, multiple=False):
        if b'"content":"stuck"' in message.body:
            await never.wait()  # written to a connection that is gone: no answer, ever
        await real_ack(message, multiple)

    monkeypatch.setattr(aio_pika.message.IncomingMessage, "ack", ack)
    async with Stream(server, bob) as stream:
        await http.post(base, json={"content": "stuck"}, headers=ada.headers)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await stream.until(lambda e: False, timeout=10)
        assert closed.value.rcvd.code == 1012
    monkeypatch.setattr(aio_pika.message.IncomingMessage, "ack", real_ack)
    await http.post(base, json={"content": "after"}, headers=ada.headers)
    async with Stream(server, bob) as stream:
        seen = await stream.until(
            lambda e: e["type"] == "message.sent" and e["payload"]["message"]["content"] == "after"
        )
    said = [e["payload"]["message"]["content"] for e in seen if e["type"] == "message.sent"]
    assert said == ["stuck", "after"]


async def test_a_stream_ended_on_a_dead_connection_leaves_the_agent_free_to_stream_again(
    http, server, admin, monkeypatch
):
    """A stream's end cancels its consumer and closes its channel; on a connection that
    died those may never answer, and the agent's place among this process's readers must
    still be given back (else every later stream of the agent here gets 4409)."""
    import aio_pika.queue

    import bus.inbox

    ada, bob = await introduce(http, admin, "Ada"), await introduce(http, admin, "Bob")
    chat = await group(http, ada, bob, topic="dead end")
    monkeypatch.setattr(bus.inbox, "SETTLE_SECONDS", 0.5)
    real_cancel, asked, never = aio_pika.queue.Queue.cancel, asyncio.Event(), asyncio.Event()

    async def cancel(queue, *args, **kwargs):
        asked.set()
        await never.wait()  # asked on a connection that is gone: no answer, ever

    monkeypatch.setattr(aio_pika.queue.Queue, "cancel", cancel)
    async with Stream(server, bob):
        pass  # the client leaves; the stream's end waits on the cancel
    await asyncio.wait_for(asked.wait(), 10)
    monkeypatch.setattr(aio_pika.queue.Queue, "cancel", real_cancel)
    await http.post(
        f"/v1/chats/{chat['chat_id']}/messages", json={"content": "again"}, headers=ada.headers
    )

    async def streams_again() -> list[dict] | None:
        try:
            async with Stream(server, bob) as stream:
                return await stream.until(lambda e: e["type"] == "message.sent", timeout=5)
        except websockets.ConnectionClosed:  # 4409 while the first is still ending
            return None

    seen = await eventually(streams_again, bool, timeout=10)
    assert seen[-1]["payload"]["message"]["content"] == "again"
