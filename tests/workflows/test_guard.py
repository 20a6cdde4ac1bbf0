"""A bug in a handler fails that command with a clear error; the workflow goes on.
Also: an activity's call to a workflow that has ended is a no-op, not a retry loop."""

from __future__ import annotations

import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.running import signal_if_running, update_if_running
from workflows.guard import INTERNAL, CommandGuard


@workflow.defn(sandboxed=False)
class Fragile:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.update
    def note(self, text: str) -> int:
        if text == "bug":
            return {}["missing"]  # a KeyError: not a Temporal failure
        self.seen.append(text)
        return len(self.seen)

    @workflow.signal
    def poke(self, text: str) -> None:
        if text == "bug":
            raise ZeroDivisionError("in a signal")
        self.seen.append(f"poked {text}")

    @workflow.update
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def notes(self) -> list[str]:
        return self.seen


async def test_a_failing_handler_fails_its_command_and_the_workflow_answers_the_next(
    temporal_client: Client,
):
    queue = f"guard-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client, task_queue=queue, workflows=[Fragile], interceptors=[CommandGuard()]
    ):
        handle = await temporal_client.start_workflow(
            Fragile.run, id=f"fragile-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        assert await handle.execute_update(Fragile.note, "first") == 1
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(Fragile.note, "bug")
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == INTERNAL
        assert "KeyError" in cause.message and "note" in cause.message
        await handle.signal(Fragile.poke, "bug")
        await handle.signal(Fragile.poke, "gently")
        assert await handle.execute_update(Fragile.note, "second") == 3
        assert await handle.query(Fragile.notes) == ["first", "poked gently", "second"]
        await handle.execute_update(Fragile.finish)
        assert await handle.result() == ["first", "poked gently", "second"]

        # the workflow has ended: a signal or an update from an activity is a no-op
        assert await signal_if_running(handle, Fragile.poke, "late") is False
        assert await update_if_running(handle, Fragile.note, "late") == (False, None)
