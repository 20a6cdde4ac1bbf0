"""Timeouts and retry policies for every activity call, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

STORE = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=0,
        non_retryable_error_types=["ValidationError", "InvalidDocument"],
    ),
    "schedule_to_close_timeout": timedelta(hours=1),
}
"""MongoDB writes: idempotent, so retried until the store is back (bounded at one hour)."""

PUBLISH = STORE
"""RabbitMQ publishes: idempotent by event id, same bounds as the store."""

LLM = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        non_retryable_error_types=["UnknownModel"],
    ),
}
"""LangChain calls: a few bounded tries, then the caller falls back (a chat never waits on a
model for long)."""
