"""Prometheus metrics of the API: requests by route and status, latency, and domain counts.

Each app has its own registry (tests build many apps in one process). ``/metrics`` reads
only these in-memory figures, so it never waits on a dependency.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from api.deps import Public, declare_access


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agora_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "agora_http_request_seconds", "HTTP request latency by route template and method.",
            ["route", "method"], registry=self.registry,
        )  # fmt: skip
        self.events = Counter(
            "agora_domain_events", "Domain actions the API accepted, by kind.",
            ["kind"], registry=self.registry,
        )  # fmt: skip

    def count(self, kind: str) -> None:
        self.events.labels(kind=kind).inc()


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def measure(request: Request, call_next) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        template = route_template(request)
        metrics.requests.labels(template, request.method, str(response.status_code)).inc()
        metrics.latency.labels(template, request.method).observe(time.perf_counter() - started)
        return response

    router = APIRouter(tags=["health"], dependencies=[Public])

    @router.get("/metrics", response_class=Response)
    async def read_metrics() -> Response:
        """Prometheus text format; in-memory figures only (never waits on a dependency)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(declare_access(router))
    return metrics


def route_template(request: Request) -> str:
    """The route's template (``/v1/chats/{chat_id}``): ids never become label values."""
    if request.scope.get("route") is None:
        return "unmatched"
    template = request.url.path
    for name, value in request.path_params.items():
        template = template.replace(f"/{value}", f"/{{{name}}}", 1)
    return template


def count(request: Request, kind: str) -> None:
    """Count a domain action (a message posted, a floor request...) on this app's metrics."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.count(kind)
