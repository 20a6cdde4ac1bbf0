"""One correlation id follows a post from the API log into the worker's log and the event."""

from __future__ import annotations

import json
import logging
import uuid

from bus import EventBus, consume
from core.logging import JsonFormatter
from models.events import EventEnvelope
from tests.conftest import eventually
from tests.helpers import introduce, value, worker_process


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

        cancel = await consume(bus.connection, bus.topology.inbox_queue(b.agent_id), on_event,
                               dead_letter_exchange=bus.topology.dead_letters)  # fmt: skip
        chat = (await api.post("/v1/chats", json={"type": "direct", "participants": [b.agent_id]},
                               headers=a.headers)).json()  # fmt: skip
        cid = f"trace-{uuid.uuid4().hex[:10]}"
        posted = await api.post(f"/v1/chats/{chat['chat_id']}/messages", json={"content": "hi"},
                                headers=a.headers | {"X-Correlation-ID": cid})  # fmt: skip
        assert posted.headers["x-correlation-id"] == cid
        await eventually(lambda: value([e for e in received if e.type == "message.sent"]), bool)
        await eventually(lambda: value(worker_log.read_text() if worker_log.exists() else ""),
                         lambda text: cid in text, timeout=20)  # fmt: skip
        await cancel()

    event = next(e for e in received if e.type == "message.sent")
    assert event.correlation_id == cid
    api_lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
                 if r.name == "agora.api"]  # fmt: skip
    assert any(line.get("correlation_id") == cid and "/messages" in line["msg"]
               for line in api_lines)  # fmt: skip
    worker_lines = [json.loads(line) for line in worker_log.read_text().splitlines()
                    if line.startswith("{") and cid in line]  # fmt: skip
    assert any(line["msg"] == "event published" and line["event_type"] == "message.sent"
               for line in worker_lines)  # fmt: skip
