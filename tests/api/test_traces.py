"""Traces: one message's path, from the API request through Temporal's client, workflow
and activities and the RabbitMQ publish to the reader's stream, is one trace, found by
its correlation id (an in-process exporter stands in for an OTLP collector)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing
from tests.conftest import eventually
from tests.helpers import Stream, group, introduce


class WhileOn(InMemorySpanExporter):
    """Keeps spans only while a test of traces runs (the provider outlives it)."""

    on = False

    def export(self, spans):
        return super().export(spans) if self.on else SpanExportResult.SUCCESS


EXPORTER = WhileOn()


@pytest.fixture
def traced():
    """Tracing on in this process (for the rest of the session: a tracer provider is
    set once), before the test's worker and API are made."""
    if not tracing.is_configured():
        tracing.configure_tracing("agora-test", SimpleSpanProcessor(EXPORTER))
    EXPORTER.clear()
    EXPORTER.on = True
    yield EXPORTER
    EXPORTER.on = False
    EXPORTER.clear()


async def test_one_message_is_one_trace_from_the_request_to_the_readers_stream(
    traced, server, admin
):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        chat = await group(api, ada, bob)
        async with Stream(server, bob) as stream:
            posted = await api.post(
                f"/v1/chats/{chat['chat_id']}/messages",
                json={"content": "traced"},
                headers=ada.headers | {"X-Correlation-ID": "trace-me-1"},
            )
            assert posted.status_code == 201
            await stream.until(lambda e: e["type"] == "message.sent")

        def spans_of_the_post():
            spans = traced.get_finished_spans()
            roots = [
                s
                for s in spans
                if s.attributes.get("agora.correlation_id") == "trace-me-1"
                and s.name.startswith("POST")
            ]
            if not roots:
                return []
            trace_id = roots[0].context.trace_id
            return [s for s in spans if s.context.trace_id == trace_id]

        async def names():
            return {s.name.split(":")[0] for s in spans_of_the_post()}

        await eventually(
            names,
            lambda n: (
                {"StartWorkflowUpdate", "RunActivity", "rabbitmq.publish", "stream.deliver"} <= n
            ),
            timeout=20,
        )
        assert "deliver_batch" in {s.name.split(":")[-1] for s in spans_of_the_post()}
        delivered = [s for s in spans_of_the_post() if s.name == "stream.deliver"]
        assert delivered[0].attributes["agora.agent_id"] == bob.agent_id
        assert delivered[0].attributes["agora.correlation_id"] == "trace-me-1"

        slowest = await api.get("/v1/traces/slowest", headers=admin)
        assert slowest.status_code == 200 and slowest.json()["tracing"] is True
        assert slowest.json()["traces"]
        refused = await api.get("/v1/traces/slowest", headers=ada.headers)
        assert refused.status_code == 403
