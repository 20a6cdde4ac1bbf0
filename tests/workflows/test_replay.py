"""Recorded histories replay on the current workflow code (no server: Temporal's Replayer).

Each history under ``histories/`` is one a real run wrote and a later worker could not
replay; the test keeps it replaying.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.registry import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


async def test_a_local_flush_that_timed_out_replays_to_the_same_fallback():
    """An agent's flush timed out as a local activity (the store was overloaded) and the
    run fell back to the regular activity; a replay saw the timeout as a bare
    ``TimeoutError``, not an ``ActivityError``, failed the workflow instead, and every
    later task of that agent failed with TMPRL1100."""
    events = json.loads((HISTORIES / "agent-local-flush-timed-out.json").read_text())
    history = WorkflowHistory.from_json("agent/b11-8d6b44", events)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@pytest.mark.parametrize(
    "name, workflow_id",
    [
        # a group chat's posts, each followed by the notice interval's timer (the deliver
        # lane armed it though no notice waited): before notice-timer-only-when-waiting
        ("chat-before-the-notice-timer-patch", "chat/g-9edc6eaf43c44476a162"),
        # a round-robin room of four hosted agents, each asking for the floor on the
        # notice of the post before its turn: before ask-again-with-the-post
        ("hosted-round-robin-chat-before-asking-again", "chat/g-fb1a888451cc4bfe8288"),
        ("hosted-agent-before-asking-again", "agent/rrh0-f17e5c"),
        # an introduction whose set-up was a regular activity and a second workflow task
        # for its answer: before life-set-up-in-its-first-task
        ("agent-introduced-before-the-local-set-up", "agent/i1-3b5c11"),
        # the same room and one of its agents since their eras (one patch marker a run)
        ("hosted-round-robin-chat-in-the-first-era", "chat/g-f4bc935100d84827a289"),
        ("hosted-agent-in-the-first-era", "agent/rrh2-272145"),
        # since timers-kept-across-wake-ups: the room's floor projection timer and a busy
        # group chat's notice timer, each armed once for its deadline, not once a post
        ("hosted-round-robin-chat-with-kept-timers", "chat/g-6ab99dc300d148f78aef"),
        ("group-chat-under-load-with-kept-timers", "chat/g-86ba4a9a01c94c76b06f"),
    ],
)
async def test_a_run_recorded_before_a_patch_replays_on_the_patched_code(name, workflow_id):
    """Runs that were live when the patches deployed replay with the commands they had,
    and runs recorded with an era replay with every patch it stands for."""
    events = json.loads(gzip.decompress((HISTORIES / f"{name}.json.gz").read_bytes()))
    history = WorkflowHistory.from_json(workflow_id, events)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
