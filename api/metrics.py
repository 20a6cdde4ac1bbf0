"""Prometheus metrics of the API: requests by route and status, latency, and domain counts.

Each app has its own registry (tests build many apps in one process). ``/metrics`` reads
only these in-memory figures, so it never waits on a dependency.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from api.deps import Public, declare_access
from persistence import count_by

log = logging.getLogger("agora.api.metrics")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agora_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agora_http_request_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.events = Counter(
            "agora_domain_events",
            "Domain actions the API accepted, by kind.",
            ["kind"],
            registry=self.registry,
        )

        self.agents = Gauge("agora_agents", "Agents by status.", ["status"], registry=self.registry)
        self.chats = Gauge("agora_chats", "Chats by type.", ["type"], registry=self.registry)
        self.tasks = Gauge("agora_tasks", "Tasks by status.", ["status"], registry=self.registry)
        self.queue = Gauge(
            "agora_queue_messages", "Messages waiting, by queue.", ["queue"], registry=self.registry
        )
        self.refreshed = Gauge(
            "agora_gauges_refreshed_timestamp_seconds",
            "When the gauges above were last read.",
            registry=self.registry,
        )

    async def refresh(self, deps) -> None:
        """Read the gauges from MongoDB and RabbitMQ (in the background: /metrics only
        reads memory). A dependency that is down leaves its gauges as they were."""
        if deps.database is not None:
            for gauge, collection, field in (
                (self.agents, "agents", "status"),
                (self.chats, "chats", "type"),
                (self.tasks, "tasks", "status"),
            ):
                counts = await count_by(deps.database, collection, field)
                for value, n in counts.items():
                    gauge.labels(value).set(n)
        if deps.bus is not None:
            dead = deps.bus.topology.dead_letter_queue
            self.queue.labels("dead_letters").set(await deps.bus.queue_depth(dead))
        if deps.temporal is not None:
            for name, kind, depth in await task_backlogs(deps.temporal, deps.settings):
                self.queue.labels(f"temporal:{name}:{kind}").set(depth)
        self.refreshed.set_to_current_time()

    async def keep_refreshing(self, deps, every: float) -> None:
        while True:
            try:
                await asyncio.wait_for(self.refresh(deps), timeout=every)
            except Exception as exc:  # the next round tries again
                log.warning("metrics gauges not refreshed: %s", type(exc).__name__)
            await asyncio.sleep(every)

    def count(self, kind: str, n: int = 1) -> None:
        self.events.labels(kind=kind).inc(n)


async def task_backlogs(temporal, settings) -> list[tuple[str, str, int]]:
    """The approximate backlog of each Agora task queue (workflow and activity tasks
    waiting for a worker), from Temporal's own task queue statistics."""
    found = []
    for name in (settings.task_queue, settings.llm_task_queue):
        for kind, queue_type in (
            ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        ):
            described = await temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=temporal.namespace,
                    task_queue=TaskQueue(name=name),
                    task_queue_type=queue_type,
                    report_stats=True,
                )
            )
            found.append((name, kind, int(described.stats.approximate_backlog_count)))
    return found


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()
    app.state.metrics = metrics
    credentials = app.state.credentials
    checks = Gauge(
        "agora_credential_checks",
        "Token checks since the process started, by what answered.",
        ["source"],
        registry=metrics.registry,
    )
    checks.labels("cache").set_function(lambda: credentials.hits)
    checks.labels("store").set_function(lambda: credentials.reads)
    # past the cache's lifetime, while the store was away (a store restart)
    checks.labels("stale").set_function(lambda: credentials.stale)

    def streams_open() -> int:
        deps = getattr(app.state, "deps", None)
        bus = getattr(deps, "bus", None)
        return len(bus.reading) if bus is not None else 0

    Gauge(
        "agora_streams_open",
        "Agents whose inbox a stream or long poll of this process reads now.",
        registry=metrics.registry,
    ).set_function(streams_open)

    app.add_middleware(Measured, metrics=metrics)

    router = APIRouter(tags=["health"], dependencies=[Public])

    @router.get("/metrics", response_class=Response)
    async def read_metrics() -> Response:
        """Prometheus text format; in-memory figures only (never waits on a dependency)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(declare_access(router))
    return metrics


class Measured:
    """ASGI middleware: each request counted by route template, method and status, and
    its time to the answer's start observed (pure ASGI: Starlette's ``BaseHTTPMiddleware``
    costs a task group and memory streams a request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                template, method = route_template(Request(scope)), scope["method"]
                self.metrics.requests.labels(template, method, str(message["status"])).inc()
                elapsed = time.perf_counter() - started
                self.metrics.latency.labels(template, method).observe(elapsed)
            await send(message)

        await self.app(scope, receive, measured)


def route_template(request: Request) -> str:
    """The route's template (``/v1/chats/{chat_id}``): ids never become label values."""
    if request.scope.get("route") is None:
        return "unmatched"
    template = request.url.path
    for name, value in request.path_params.items():
        template = template.replace(f"/{value}", f"/{{{name}}}", 1)
    return template


def count(request: Request, kind: str, n: int = 1) -> None:
    """Count a domain action (a message posted, a floor request...) on this app's metrics."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.count(kind, n)
