"""The Temporal client factory and the search attributes every workflow uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.settings import Settings
from core.tracing import is_configured

AGENT_ID = SearchAttributeKey.for_keyword("AgoraAgentId")
CHAT_ID = SearchAttributeKey.for_keyword("AgoraChatId")
TASK_ID = SearchAttributeKey.for_keyword("AgoraTaskId")
STATUS = SearchAttributeKey.for_keyword("AgoraStatus")
KIND = SearchAttributeKey.for_keyword("AgoraKind")

SEARCH_ATTRIBUTES = (AGENT_ID, CHAT_ID, TASK_ID, STATUS, KIND)
"""Registered on the dev server at start (``--search-attribute NAME=Keyword``)."""


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client that carries pydantic models in payloads (on ``runtime``, when given:
    the worker's, which serves the SDK's metrics)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=tracing_interceptors(),
    )


def tracing_interceptors() -> list:
    """Temporal's OpenTelemetry interceptor when this process traces (``core.tracing``):
    on a client, it applies to its calls and to the workers made with it."""
    if not is_configured():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def metrics_runtime(port: int) -> Runtime:
    """A Temporal runtime that serves the SDK's Prometheus metrics on 127.0.0.1:port."""
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
