"""Calls from an activity to another workflow, which may have ended meanwhile.

A workflow that has completed (a retired agent's life, a closed chat, a settled task)
answers every signal and update with NOT_FOUND. Left alone, the calling activity would
retry that for as long as its policy allows and hold up the workflow that asked. Here a
call to an ended workflow is a no-op that says so (False or None), written once for every
activity that signals or updates another workflow.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode


def ended(exc: RPCError) -> bool:
    """The target workflow has completed (or never was): nobody is there to answer."""
    return exc.status == RPCStatusCode.NOT_FOUND


async def signal_if_running(handle: WorkflowHandle, signal: str, arg: Any) -> bool:
    """Signal the workflow; False (and nothing sent) when it has ended."""
    try:
        await handle.signal(signal, arg)
    except RPCError as exc:
        if ended(exc):
            return False
        raise
    return True


async def update_if_running(
    handle: WorkflowHandle,
    update: str,
    arg: Any = None,
    *,
    id: str | None = None,
    result_type: type | None = None,
) -> tuple[bool, Any]:
    """Run the update (by its name, ``core.names``); ``(False, None)`` when the workflow
    has ended."""
    try:
        args = [] if arg is None else [arg]
        result = await handle.execute_update(update, args=args, id=id, result_type=result_type)
    except RPCError as exc:
        if ended(exc):
            return False, None
        raise
    return True, result
