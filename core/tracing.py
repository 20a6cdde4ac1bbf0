"""OpenTelemetry traces across the path of a message: the API request, the Temporal
client and workflow and each activity (Temporal's ``TracingInterceptor``), the RabbitMQ
publish (its context carried in the message's headers) and the stream's delivery.

Off unless ``AGORA_TRACING=1`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans
are exported by OTLP/HTTP to that endpoint, nothing else leaves the machine). Each
process also keeps its slowest recent traces in memory (``SLOWEST``), which the health
route shows.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import threading
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TRACER = "agora"


class SlowestTraces(SpanProcessor):
    """The ``keep`` slowest root spans seen (a trace's duration is its root's)."""

    def __init__(self, keep: int = 20) -> None:
        self.keep = keep
        self._heap: list[tuple[int, str, dict]] = []
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if span.parent is not None and not span.parent.is_remote:
            return
        if span.start_time is None or span.end_time is None:
            return
        took = span.end_time - span.start_time
        entry = {
            "trace_id": f"{span.context.trace_id:032x}",
            "name": span.name,
            "ms": round(took / 1e6, 1),
            "correlation_id": (span.attributes or {}).get("agora.correlation_id"),
        }
        with self._lock:
            item = (took, entry["trace_id"] + span.name, entry)
            if len(self._heap) < self.keep:
                heapq.heappush(self._heap, item)
            elif took > self._heap[0][0]:
                heapq.heapreplace(self._heap, item)

    def slowest(self) -> list[dict]:
        with self._lock:
            return [entry for _, _, entry in sorted(self._heap, reverse=True)]


SLOWEST = SlowestTraces()


def tracing_enabled() -> bool:
    return os.environ.get("AGORA_TRACING") == "1" or bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


_configured = False


def configure_tracing(service: str, *processors: SpanProcessor) -> bool:
    """Install the process's tracer provider once (with ``processors`` too, as the tests'
    in-memory exporter); False when tracing is off."""
    global _configured
    if _configured:
        return True
    if not tracing_enabled() and not processors:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SLOWEST)
    for processor in processors:
        provider.add_span_processor(processor)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def is_configured() -> bool:
    return _configured


def inject_headers() -> dict[str, str]:
    """The current trace context as message headers (W3C ``traceparent``); none when
    tracing is off."""
    carrier: dict[str, str] = {}
    if _configured:
        propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def delivery_span(headers, agent_id: str, event) -> Iterator[None]:
    """The stream's delivery of one event, a child of its publish (from the headers)."""
    if not _configured:
        yield
        return
    tracer = trace.get_tracer(TRACER)
    attributes = {"agora.agent_id": agent_id, "agora.event_type": event.type}
    if event.correlation_id:
        attributes["agora.correlation_id"] = event.correlation_id
    with tracer.start_as_current_span(
        "stream.deliver",
        context=context_from(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield


@contextlib.contextmanager
def publish_span(events) -> Iterator[None]:
    """One publish of events to RabbitMQ (their headers carry this span's context)."""
    if not _configured:
        yield
        return
    attributes = {"messaging.system": "rabbitmq", "agora.events": len(events)}
    correlation = next((e.correlation_id for e in events if e.correlation_id), None)
    if correlation:
        attributes["agora.correlation_id"] = correlation
    with trace.get_tracer(TRACER).start_as_current_span(
        "rabbitmq.publish", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        yield


def context_from(headers: Mapping[str, object] | None) -> otel_context.Context:
    carrier = {
        k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (headers or {}).items()
    }
    return propagate.extract(carrier)


def carrier_now() -> dict[str, str]:
    """The current trace context, to carry along with data (a post waiting in a
    workflow for the activity that delivers it); empty when tracing is off."""
    return inject_headers()


@contextlib.contextmanager
def within(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block in the trace of ``carrier`` (as its current context), so what it
    calls (an activity scheduled through Temporal's interceptor) joins that trace."""
    if not _configured or not carrier:
        yield
        return
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)
