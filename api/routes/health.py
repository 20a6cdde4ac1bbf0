"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Public
from bus.nodes import cluster_state

router = APIRouter(tags=["health"], dependencies=[Public])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
async def read_health() -> Health:
    """The process is alive (no dependency is asked)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={
        200: {"description": "ready, or degraded: a minority of RabbitMQ nodes is down"},
        503: {"model": Health, "description": "a dependency does not answer"},
    },
)
async def read_readiness(request: Request) -> JSONResponse:
    """200 only when MongoDB, RabbitMQ and Temporal answer; 503 names the one that did not.
    With ``AGORA_AMQP_NODES`` (a RabbitMQ cluster), ``rabbitmq_nodes`` names each node that
    does not answer: ``degraded`` (still 200) while a majority does."""
    deps = request.app.state.deps
    timeout = request.app.state.settings.readiness_timeout_seconds

    async def check(name: str, probe) -> tuple[str, str]:
        try:
            await asyncio.wait_for(probe(), timeout)
        except Exception as exc:  # any failure means "not ready", never a 500
            return name, f"unavailable: {type(exc).__name__}"
        return name, "ok"

    async def mongodb() -> None:
        if deps.database is None:
            raise ConnectionError("not connected")
        await deps.database.ping()

    async def rabbitmq() -> None:
        if deps.bus is None:
            raise ConnectionError("not connected")
        await deps.bus.ping()

    async def temporal() -> None:
        if deps.temporal is None:
            raise ConnectionError("not connected")
        healthy = await deps.temporal.service_client.check_health(
            timeout=timedelta(seconds=timeout)
        )
        if not healthy:
            raise ConnectionError("not serving")

    checks = dict(
        await asyncio.gather(
            check("mongodb", mongodb), check("rabbitmq", rabbitmq), check("temporal", temporal)
        )
    )
    nodes = request.app.state.settings.amqp_nodes
    serving = True
    if nodes:
        serving, checks["rabbitmq_nodes"] = await cluster_state(nodes, timeout)
    ready = serving and all(
        value == "ok" for name, value in checks.items() if name != "rabbitmq_nodes"
    )
    state = "ready" if ready and checks.get("rabbitmq_nodes", "ok") == "ok" else "degraded"
    body = Health(status=state if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
