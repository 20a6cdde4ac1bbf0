"""A query its worker was too starved to answer (the SDK's deadlock detector fails an
activation that does not yield within 2 s) is asked again, a bounded number of times;
the API answers 503 with Retry-After when it stays starved, and 500 for a handler's bug.

The stall is not made for real here: a workflow thread stalled past the detector on
the suite's own worker could leave the SDK an eviction it cannot finish (seen under
load: the worker's shutdown then hung), so the next interceptor plays the worker."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import QueryWorkflowInput, WorkflowQueryFailedError

import core.temporal
from api.errors import ServerErrors, install_error_handlers
from core.settings import Settings
from core.temporal import StarvedQueryRetry, connect_temporal, starved

QUERY = QueryWorkflowInput(
    id="chat-1",
    run_id=None,
    query="floor",
    args=[],
    reject_condition=None,
    headers={},
    ret_type=None,
    rpc_metadata={},
    rpc_timeout=None,
)


class NextOutbound:
    """What the next outbound interceptor sees: a query answered after ``fails`` failures."""

    def __init__(self, fails: list[str]) -> None:
        self.fails = list(fails)
        self.asked = 0

    async def query_workflow(self, input):
        self.asked += 1
        if self.fails:
            raise WorkflowQueryFailedError(self.fails.pop(0))
        return "42"


STALL = "[TMPRL1101] Potential deadlock detected: workflow didn't yield within 2 second(s)."


def _retrying(worker: NextOutbound):
    return StarvedQueryRetry().intercept_client(worker)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(core.temporal, "QUERY_RETRY_PAUSES", (0.0, 0.0))


@pytest.mark.parametrize("stalls", [0, 1, 2])
async def test_a_starved_query_is_asked_again_until_it_is_answered(stalls):
    worker = NextOutbound([STALL] * stalls)
    assert await _retrying(worker).query_workflow(QUERY) == "42"
    assert worker.asked == stalls + 1


async def test_three_asks_at_most_then_the_stall_is_the_answer():
    worker = NextOutbound([STALL] * 5)
    with pytest.raises(WorkflowQueryFailedError) as failed:
        await _retrying(worker).query_workflow(QUERY)
    assert starved(failed.value) and worker.asked == 3


async def test_a_handlers_own_failure_is_not_asked_again():
    worker = NextOutbound(["KeyError: 'x'", STALL])
    with pytest.raises(WorkflowQueryFailedError) as failed:
        await _retrying(worker).query_workflow(QUERY)
    assert not starved(failed.value) and worker.asked == 1


async def test_the_clients_agora_makes_carry_the_retry(settings: Settings):
    client = await connect_temporal(settings)
    assert any(isinstance(i, StarvedQueryRetry) for i in client.config()["interceptors"])


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
