"""A query its worker was too starved to answer (the SDK's deadlock detector fails an
activation that does not yield within 2 s) is asked again, a bounded number of times;
the API answers 503 with Retry-After when it stays starved, and 500 for a handler's bug."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from temporalio import workflow
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.errors import ServerErrors, install_error_handlers
from core.settings import Settings
from core.temporal import connect_temporal, starved

STALLS = {"left": 0}
"""How many of the next queries stall their worker thread past the deadlock detector."""
LOCK = threading.Lock()


def _stall_if_asked() -> None:
    with LOCK:
        stall = STALLS["left"] > 0
        STALLS["left"] -= int(stall)
    if stall:  # a gc pause or a starved process, as CI's busy cores gave one
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            time.sleep(0.01)


@workflow.defn(sandboxed=False)
class Answering:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def answer(self) -> str:
        _stall_if_asked()
        return "42"


async def _answering(client: Client, queue: str):
    return await client.start_workflow(
        Answering.run, id=f"answering-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


@pytest.fixture
async def queue(stack, temporal_client):
    name = f"starved-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        temporal_client,
        task_queue=name,
        workflows=[Answering],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        yield name
    STALLS["left"] = 0


async def test_a_starved_query_is_asked_again_and_answered(settings: Settings, queue):
    client = await connect_temporal(settings)
    handle = await _answering(client, queue)
    assert await handle.query(Answering.answer) == "42"  # cached, then starved once
    STALLS["left"] = 1
    assert await handle.query(Answering.answer) == "42"
    assert STALLS["left"] == 0
    await handle.terminate()


async def test_without_the_retry_the_same_stall_fails_the_query(stack, queue):
    plain = await Client.connect(
        stack.env()["AGORA_TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
    )
    handle = await _answering(plain, queue)
    assert await handle.query(Answering.answer) == "42"
    STALLS["left"] = 1
    with pytest.raises(WorkflowQueryFailedError) as failed:
        await handle.query(Answering.answer)
    assert starved(failed.value)
    await handle.terminate()


async def test_a_query_still_starved_after_three_asks_is_503_with_retry_after():
    app = FastAPI()
    app.add_middleware(ServerErrors)  # as api.app does
    install_error_handlers(app)

    @app.get("/starved")
    async def always_starved() -> None:
        raise WorkflowQueryFailedError("[TMPRL1101] Potential deadlock detected")

    @app.get("/broken")
    async def broken_handler() -> None:
        raise WorkflowQueryFailedError("KeyError: 'x'")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        busy = await http.get("/starved")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "1"
        assert "busy" in busy.json()["detail"]
        assert (await http.get("/broken")).status_code == 500
