"""A bug in a handler fails that command, never the workflow task.

An exception that is not a Temporal failure, raised in an update or signal handler,
would fail the workflow task, and Temporal retries a failed workflow task forever: every
later command of that workflow would hang or answer 503 while the cause sits in the
history. This interceptor turns such an exception in an update handler into an
``ApplicationError`` of type ``Internal`` (the caller gets a clear error, and the
workflow goes on with its other commands); in a signal handler, where nobody waits for
an answer, the signal is logged and dropped. Validators need no guard: Temporal rejects
an update whose validator raises anything.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import (
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

INTERNAL = "Internal"
_PASS_THROUGH = (
    FailureError,
    asyncio.CancelledError,
    workflow.NondeterminismError,
    workflow.ReadOnlyContextError,
)


def command_failure(name: str, exc: Exception) -> ApplicationError:
    """What the caller of a failed command is told: which command, and what went wrong."""
    text = f"{name} failed: {type(exc).__name__}: {exc}"
    return ApplicationError(text[:500], type=INTERNAL, non_retryable=True)


class _GuardedInbound(WorkflowInboundInterceptor):
    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        try:
            return await super().handle_update_handler(input)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            workflow.logger.exception("update %s failed", input.update)
            raise command_failure(input.update, exc) from exc

    async def handle_signal(self, input: HandleSignalInput) -> None:
        try:
            await super().handle_signal(input)
        except _PASS_THROUGH:
            raise
        except Exception:
            workflow.logger.exception("signal %s failed and was dropped", input.signal)


class CommandGuard(Interceptor):
    """Registered on every worker (``workers.registry``)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _GuardedInbound
