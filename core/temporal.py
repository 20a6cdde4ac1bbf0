"""The Temporal client factory and the search attributes every workflow uses."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    WorkflowQueryFailedError,
)
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

log = logging.getLogger("agora.temporal")

STARVED = "[TMPRL1101]"
"""How a worker's deadlock detector fails an activation that did not yield within 2 s."""

QUERY_RETRY_PAUSES = (0.2, 0.5)
"""The pauses before a starved query is asked again (three asks in all)."""


def starved(error: BaseException) -> bool:
    """A query its worker did not get to answer in time (a starved or paused process),
    not one its handler refused: asking again is safe, since a query changes nothing."""
    return isinstance(error, WorkflowQueryFailedError) and error.message.startswith(STARVED)


class StarvedQueryRetry(Interceptor):
    """Asks a query again, a bounded number of times, when the worker's deadlock detector
    failed it: a read should not fail because a busy worker paused for two seconds."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _StarvedQueryRetryOutbound(next)


class _StarvedQueryRetryOutbound(OutboundInterceptor):
    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        for pause in QUERY_RETRY_PAUSES:
            try:
                return await self.next.query_workflow(input)
            except WorkflowQueryFailedError as exc:
                if not starved(exc):
                    raise
                log.warning("query %s on %s starved; asking again", input.query, input.id)
            await asyncio.sleep(pause)
        return await self.next.query_workflow(input)


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client that carries pydantic models in payloads and asks a starved query again
    (on ``runtime``, when given: the worker's, which serves the SDK's metrics)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=[*tracing_interceptors(), StarvedQueryRetry()],
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
