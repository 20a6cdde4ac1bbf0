"""AgentWorkflow on the dev server: events, presence timer, search attributes, continue-as-new,
and a worker killed in the middle of introductions."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bus import EventBus, consume
from core.names import agent_workflow_id
from models.events import EventEnvelope
from persistence import Database
from tests.conftest import eventually
from tests.helpers import bearer, json_of, value, worker_process
from workflows.agent import AgentWorkflow


class Events:
    """Every event seen on the topic exchange under a routing pattern, duplicates included."""

    def __init__(self) -> None:
        self.seen: list[EventEnvelope] = []

    def of(self, event_type: str, agent_id: str) -> list[EventEnvelope]:
        return [
            e for e in self.seen if e.type == event_type and e.payload.get("agent_id") == agent_id
        ]


@pytest_asyncio.fixture
async def events(bus: EventBus) -> AsyncIterator[Events]:
    collected = Events()

    async def handler(event: EventEnvelope) -> None:
        collected.seen.append(event)

    cancel = await consume(
        bus.connection,
        f"{bus.topology.prefix}.test-agent-events",
        handler,
        bind=(bus.topology.events, "agent.#"),
    )
    yield collected
    await cancel()


async def test_introduction_publishes_agent_introduced_once(api, admin, events):
    agent_id = f"herald-{uuid.uuid4().hex[:8]}"
    created = await api.post(
        "/v1/agents", json={"agent_id": agent_id, "name": "Herald"}, headers=admin
    )
    assert created.status_code == 201
    introduced = await eventually(
        lambda: value(events.of("agent.introduced", agent_id)), lambda found: len(found) >= 1
    )
    assert introduced[0].payload == {"agent_id": agent_id, "name": "Herald", "status": "active"}
    assert introduced[0].correlation_id == created.headers["x-correlation-id"]


async def test_silence_marks_an_agent_offline_and_a_heartbeat_brings_it_back(
    api, admin, settings, events
):
    settings.agent_offline_after_seconds = 2.0
    # a presence this short is stored only if the projection's interval is shorter still
    # (debounced writes: the newest state wins)
    settings.projection_interval_seconds = 0.1
    agent_id = f"quiet-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/agents", json={"agent_id": agent_id, "name": "Q"}, headers=admin)
    token = bearer(created.json()["token"])
    await api.patch(f"/v1/agents/{agent_id}", json={"status": "busy"}, headers=token)

    assert (await api.post(f"/v1/agents/{agent_id}/heartbeat", headers=token)).status_code == 202
    online = await eventually(
        lambda: json_of(api.get(f"/v1/agents/{agent_id}", headers=token)),
        lambda m: m["online_status"] is True,
    )
    assert online["last_seen"] is not None and online["status"] == "busy"

    offline = await eventually(
        lambda: json_of(api.get(f"/v1/agents/{agent_id}", headers=token)),
        lambda m: m["online_status"] is False,
        timeout=20,
    )
    assert offline["status"] == "offline"
    changes = await eventually(
        lambda: value(events.of("agent.status_changed", agent_id)),
        lambda found: any(e.payload["new_status"] == "offline" for e in found),
    )
    went_offline = next(e for e in changes if e.payload["new_status"] == "offline")
    assert went_offline.payload["old_status"] == "busy"

    await api.post(f"/v1/agents/{agent_id}/heartbeat", headers=token)
    back = await eventually(
        lambda: json_of(api.get(f"/v1/agents/{agent_id}", headers=token)),
        lambda m: m["online_status"] is True,
    )
    assert back["status"] == "busy"


async def test_search_attributes_find_an_agent_by_id_and_status(api, admin, temporal_client):
    agent_id = f"findme-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/agents", json={"agent_id": agent_id, "name": "F"}, headers=admin)
    await api.patch(
        f"/v1/agents/{agent_id}", json={"status": "idle"}, headers=bearer(created.json()["token"])
    )

    async def matching() -> list[str]:
        query = f'AgoraAgentId="{agent_id}" AND AgoraStatus="idle" AND AgoraKind="agent"'
        return [wf.id async for wf in temporal_client.list_workflows(query)]

    assert await eventually(matching, lambda ids: ids == [agent_workflow_id(agent_id)])


async def test_an_introduction_answers_from_the_lifes_first_workflow_task(
    api, admin, temporal_client
):
    """The set-up runs inside the first workflow task (a local activity), and the new
    life records one patch marker (its era), not one for each patch in the code."""
    agent_id = f"quick-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/agents", json={"agent_id": agent_id, "name": "Q"}, headers=admin)
    assert created.status_code == 201
    assert created.json()["manifest"]["agent_id"] == agent_id
    history = await temporal_client.get_workflow_handle(agent_workflow_id(agent_id)).fetch_history()
    kinds = [EventType.Name(e.event_type) for e in history.events]
    answered = kinds.index("EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    assert kinds[:answered].count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED") == 1
    assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in kinds[:answered]
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert markers.count("core_patch") == 1
    assert markers.count("core_local_activity") >= 1


async def test_retirement_publishes_agent_retired_and_completes_the_workflow(
    api, admin, events, temporal_client
):
    agent_id = f"leaver-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/agents", json={"agent_id": agent_id, "name": "L"}, headers=admin)
    assert (await api.delete(f"/v1/agents/{agent_id}", headers=admin)).status_code == 200
    await eventually(
        lambda: value(events.of("agent.retired", agent_id)), lambda found: len(found) == 1
    )
    handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(agent_id))
    final = await asyncio.wait_for(handle.result(), timeout=15)
    assert final.status == "retired"
    token = bearer(created.json()["token"])
    assert (await api.post(f"/v1/agents/{agent_id}/heartbeat", headers=token)).status_code == 401


async def test_a_long_life_continues_as_new_and_keeps_its_state(
    api, admin, settings, temporal_client
):
    settings.continue_as_new_after_events = 100
    agent_id = f"elder-{uuid.uuid4().hex[:8]}"
    created = await api.post(
        "/v1/agents",
        json={"agent_id": agent_id, "name": "Elder", "available_resources": [{"name": "memory"}]},
        headers=admin,
    )
    token = bearer(created.json()["token"])
    handle = temporal_client.get_workflow_handle(agent_workflow_id(agent_id))
    first_run = (await handle.describe()).run_id
    # changes until the history passes its bound (how many depends on the events each
    # costs) and the life goes on in a new run
    for i in range(60):
        response = await api.patch(
            f"/v1/agents/{agent_id}", json={"current_activities": [f"step {i}"]}, headers=token
        )
        assert response.status_code == 200
        if i >= 14 and await _run_id(temporal_client, agent_id) != first_run:
            break
    await eventually(
        lambda: _run_id(temporal_client, agent_id), lambda run: run != first_run, timeout=20
    )
    still = await api.patch(f"/v1/agents/{agent_id}", json={"status": "idle"}, headers=token)
    assert still.status_code == 200
    manifest = still.json()
    assert manifest["current_activities"] == [f"step {i}"]
    assert manifest["available_resources"][0]["name"] == "memory"
    assert manifest["status"] == "idle"
    # the token survived too: it is the same workflow life
    assert (await api.get(f"/v1/agents/{agent_id}", headers=token)).status_code == 200


@pytest.mark.parametrize("kill_after", [0.05, 0.3, 0.8])
async def test_killing_the_worker_mid_introduction_leaves_one_manifest_and_one_event(
    api_only, admin, settings, database: Database, events, kill_after
):
    agent_id = f"phoenix-{uuid.uuid4().hex[:8]}"
    with worker_process(settings) as first:
        await asyncio.sleep(1.5)  # let it poll: the kill must land while it holds the task
        post = asyncio.create_task(
            api_only.post("/v1/agents", json={"agent_id": agent_id, "name": "P"}, headers=admin)
        )
        await asyncio.sleep(kill_after)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with worker_process(settings):
        created = await asyncio.wait_for(post, timeout=60)
        assert created.status_code == 201, created.text
        await eventually(
            lambda: value(events.of("agent.introduced", agent_id)),
            lambda found: len(found) >= 1,
            timeout=30,
        )
    assert await database.db["agents"].count_documents({"_id": agent_id}) == 1
    ids = {e.event_id for e in events.of("agent.introduced", agent_id)}
    assert len(ids) == 1


async def _run_id(client: Client, agent_id: str) -> str:
    return (await client.get_workflow_handle(agent_workflow_id(agent_id)).describe()).run_id
