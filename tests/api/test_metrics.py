"""/metrics: Prometheus text; a posted message moves its counter; requests are counted by route."""

from __future__ import annotations

import re

import httpx

from cli.stack import free_port
from tests.conftest import eventually
from tests.helpers import app_client, group, introduce, worker_process


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value from the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_posted_message_moves_the_counter(api, admin):
    ann, ben = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    chat = await group(api, ann, ben)
    before = (await api.get("/metrics")).text
    posted = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages", json={"content": "hi"}, headers=ann.headers
    )
    assert posted.status_code == 201
    refused = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages", json={"content": ""}, headers=ann.headers
    )
    assert refused.status_code == 422
    after = (await api.get("/metrics")).text
    kind = {"kind": "message_posted"}
    assert (
        value(after, "agora_domain_events_total", **kind)
        == value(before, "agora_domain_events_total", **kind) + 1
    )
    route = {"route": "/v1/chats/{chat_id}/messages", "method": "POST"}
    assert value(after, "agora_http_requests_total", **route, status="201") >= 1
    assert value(after, "agora_http_requests_total", **route, status="422") >= 1
    assert value(after, "agora_domain_events_total", kind="agent_introduced") >= 2
    assert "agora_http_request_seconds_bucket" in after


async def test_gauges_count_agents_chats_and_dead_letters_without_blocking_metrics(
    settings, worker, admin
):
    settings.metrics_refresh_seconds = 0.3
    async with app_client(settings) as api:
        a = await introduce(api, admin, "Gauge")
        b = await introduce(api, admin, "Meter")
        await group(api, a, b)

        async def scrape() -> str:
            return (await api.get("/metrics")).text

        text = await eventually(
            scrape,
            lambda t: (
                value(t, "agora_agents", status="active") >= 2
                and value(t, "agora_chats", type="group") >= 1
            ),
        )
        assert 'agora_queue_messages{queue="dead_letters"} 0.0' in text
        assert value(text, "agora_gauges_refreshed_timestamp_seconds") > 0


async def test_the_worker_serves_the_temporal_sdks_metrics_on_its_port(settings, api_only, admin):
    settings.worker_metrics_port = free_port()
    url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"

    async def scrape() -> str:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(url)).text
        except httpx.HTTPError:
            return ""

    with worker_process(settings):
        await introduce(api_only, admin, "Counted")  # publishes agent.introduced
        text = await eventually(scrape, lambda t: "agora_events_published" in t, timeout=60)
    assert "temporal_worker_task_slots_available" in text or "temporal_request" in text
    assert 'type="agent.introduced"' in text
