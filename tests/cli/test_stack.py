"""The local stack: a service that cannot start is named with its log; running ones are reused."""

from __future__ import annotations

import pytest

from cli.stack import Service, Stack, StackError, free_port


def test_a_service_that_dies_is_named_with_the_end_of_its_log(tmp_path):
    stack = Stack(tmp_path, with_app=False)
    broken = Service(
        "broken",
        free_port(),
        ["sh", "-c", "echo 'cannot open the data file' >&2; exit 3"],
        ready=lambda: False,
        start_timeout=10,
    )
    with pytest.raises(StackError) as failure:
        stack.start(broken)
    assert failure.value.service == "broken"
    assert "cannot open the data file" in str(failure.value)
    assert stack.owned_pid("broken") is None


def test_a_service_that_never_gets_ready_times_out_with_its_name(tmp_path):
    stack = Stack(tmp_path, with_app=False)
    sleepy = Service("sleepy", free_port(), ["sleep", "30"], ready=lambda: False, start_timeout=1)
    with pytest.raises(StackError, match="sleepy: not ready after 1s"):
        stack.start(sleepy)
    assert stack.stop_service("sleepy")


def test_a_second_up_reuses_what_runs(stack):
    again = Stack(stack.home, stack.ports, with_ui=False, with_app=False)
    outcome = {service.name: again.start(service) for service in again.services()}
    assert set(outcome.values()) <= {"running", "reused"}
    assert "temporal" in outcome


def test_a_worker_is_ready_only_once_it_wrote_its_own_pid(tmp_path):
    stack = Stack(tmp_path, with_app=False)
    worker = Service("worker", 0, ["sleep", "30"], ready=stack._worker_ready, start_timeout=1)
    stack.worker_ready_file.write_text("1")  # left behind by an earlier worker
    with pytest.raises(StackError, match="worker: not ready after 1s"):
        stack.start(worker)
    stack.worker_ready_file.write_text(str(stack.owned_pid("worker")))
    assert stack.start(worker) == "running"
    assert stack.stop_service("worker")
