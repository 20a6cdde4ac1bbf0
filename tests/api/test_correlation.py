"""One correlation id follows a post from the API log into the worker's log and the event."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import httpx
from starlette.responses import PlainTextResponse

from bus import EventBus, consume
from core.logging import JsonFormatter
from models.events import EventEnvelope
from tests.conftest import eventually
from tests.helpers import app_client, introduce, value, worker_process


async def test_one_correlation_id_greps_from_the_api_to_the_worker_to_the_event(
    api_only, admin, settings, bus: EventBus, tmp_path, monkeypatch, caplog
):
    worker_log = tmp_path / "worker.log"
    monkeypatch.setenv("AGORA_TEST_WORKER_LOG", str(worker_log))
    caplog.set_level(logging.INFO, logger="agora.api")
    api = api_only
    with worker_process(settings):
        a = await introduce(api, admin, "Sayer")
        b = await introduce(api, admin, "Hearer")
        received: list[EventEnvelope] = []

        async def on_event(event: EventEnvelope) -> None:
            received.append(event)

        cancel = await consume(
            bus.connection,
            bus.topology.inbox_queue(b.agent_id),
            on_event,
            dead_letter_exchange=bus.topology.dead_letters,
        )
        chat = (
            await api.post(
                "/v1/chats",
                json={"type": "direct", "participants": [b.agent_id]},
                headers=a.headers,
            )
        ).json()
        cid = f"trace-{uuid.uuid4().hex[:10]}"
        posted = await api.post(
            f"/v1/chats/{chat['chat_id']}/messages",
            json={"content": "hi"},
            headers=a.headers | {"X-Correlation-ID": cid},
        )
        assert posted.headers["x-correlation-id"] == cid
        await eventually(lambda: value([e for e in received if e.type == "message.sent"]), bool)
        await eventually(
            lambda: value(worker_log.read_text() if worker_log.exists() else ""),
            lambda text: cid in text,
            timeout=20,
        )
        await cancel()

    event = next(e for e in received if e.type == "message.sent")
    assert event.correlation_id == cid
    api_lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "agora.api"
    ]
    assert any(
        line.get("correlation_id") == cid and "/messages" in line["msg"] for line in api_lines
    )
    worker_lines = [
        json.loads(line)
        for line in worker_log.read_text().splitlines()
        if line.startswith("{") and cid in line
    ]
    assert any(
        line["msg"] == "event published" and line["event_type"] == "message.sent"
        for line in worker_lines
    )


async def test_a_post_with_no_answer_in_time_gets_504_naming_a_safe_retry(
    api_only, admin, settings, caplog
):
    """The chat's worker is gone: the post waits for the request deadline, then answers
    504 with the correlation id, and says that a retry with the same key is safe."""
    caplog.set_level(logging.INFO, logger="agora.api")
    with worker_process(settings):
        a = await introduce(api_only, admin, "Waiter")
        b = await introduce(api_only, admin, "Absent")
        body = {"type": "direct", "participants": [b.agent_id]}
        chat = (await api_only.post("/v1/chats", json=body, headers=a.headers)).json()
    async with app_client(settings.model_copy(update={"request_timeout_seconds": 1.0})) as api:
        cid = f"late-{uuid.uuid4().hex[:10]}"
        key = {"Idempotency-Key": uuid.uuid4().hex, "X-Correlation-ID": cid}
        posted = await api.post(
            f"/v1/chats/{chat['chat_id']}/messages",
            json={"content": "hi?"},
            headers=a.headers | key,
        )
        assert posted.status_code == 504, posted.text
        assert "same Idempotency-Key is safe" in posted.json()["detail"]
        assert posted.headers["x-correlation-id"] == cid
        audited = await api.get("/v1/audit?limit=20", headers=admin)
        (record,) = [r for r in audited.json()["items"] if r["correlation_id"] == cid]
        assert (record["status"], record["action"]) == (504, "POST /v1/chats/{chat_id}/messages")
    assert any("no answer in time" in r.getMessage() for r in caplog.records)


async def test_the_deadline_is_for_the_answer_to_start_not_to_end():
    """An answer that started in time is never cut (a long poll's body, a stream); one that
    did not start in time is a 504 with the correlation id."""
    from api.app import Correlated

    async def slow_start(scope, receive, send):
        await asyncio.sleep(0.5)
        await PlainTextResponse("late")(scope, receive, send)

    async def slow_body(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"whole"})

    for inner, status, body in ((slow_start, 504, None), (slow_body, 200, "whole")):
        transport = httpx.ASGITransport(app=Correlated(inner, timeout=0.2))
        async with httpx.AsyncClient(transport=transport, base_url="http://agora.test") as c:
            answer = await c.post("/v1/x", headers={"X-Correlation-ID": "c-1"})
        assert answer.status_code == status
        assert answer.headers["x-correlation-id"] == "c-1"
        if body is not None:
            assert answer.text == body
