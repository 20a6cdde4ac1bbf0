"""The README's `temporal` CLI recipes, line by line, against the session's dev server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from cli.stack import PROJECT_ROOT
from tests.conftest import eventually
from tests.helpers import group, introduce, json_of


def recipes() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Operations with the `temporal` CLI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("temporal ")]


async def _run(line: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        line,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, f"{line}\n{text}"
    return text


async def test_every_readme_recipe_works_against_the_dev_server(api, admin, settings):
    agent = await introduce(api, admin, "Ops")
    other = await introduce(api, admin, "Peer")
    chat = await group(api, agent, other, speaker_policy="fifo")
    stuck = await group(api, agent, other, topic="going nowhere")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AGORA_TEMPORAL_ADDRESS": settings.temporal_address,
        "AGENT": agent.agent_id,
        "CHAT": chat["chat_id"],
        "STUCK": stuck["chat_id"],
    }
    lines = recipes()
    assert [line.split()[2] for line in lines] == [
        "list",
        "describe",
        "query",
        "signal",
        "terminate",
        "reset",
    ]
    listing, describe, query, signal, terminate, reset = lines

    # visibility (what list reads) trails the workflow by a moment
    await eventually(lambda: _run(listing, env), lambda out: agent.agent_id in out, timeout=20)
    described = await _run(describe, env)
    assert f"chat/{chat['chat_id']}" in described and "ChatWorkflow" in described
    assert "AgoraChatId" in described  # the search attributes an operator filters by
    floor = await _run(query, env)
    assert chat["chat_id"] in floor and '"speaker_policy":"fifo"' in floor

    assert "succeeded" in await _run(signal, env)
    await eventually(
        lambda: json_of(api.get(f"/v1/agents/{agent.agent_id}", headers=agent.headers)),
        lambda m: m["online_status"] is True,
    )
    await _run(terminate, env)
    gone = await _run(describe.replace("$CHAT", "$STUCK") + " --output json", env)
    assert "WORKFLOW_EXECUTION_STATUS_TERMINATED" in gone
    assert "Resetting" in await _run(reset, env)
    # the reset agent goes on answering and changing
    changed = await api.patch(
        f"/v1/agents/{agent.agent_id}", json={"status": "busy"}, headers=agent.headers
    )
    assert changed.status_code == 200 and changed.json()["status"] == "busy"


async def test_workflows_carry_a_memo_and_activities_read_as_sentences(api, admin, temporal_client):
    from core.names import agent_workflow_id
    from workflows.agent import AgentWorkflow

    agent = await introduce(api, admin, "Memo")
    handle = temporal_client.get_workflow_handle_for(
        AgentWorkflow.run, agent_workflow_id(agent.agent_id)
    )
    described = await handle.describe()
    memo = await described.memo_value("summary")
    assert memo.startswith("Agent Memo (") and "introduced by an admin" in memo
    summaries = []
    async for event in handle.fetch_history_events():
        local = event.HasField("marker_recorded_event_attributes") and (
            event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        )
        if event.HasField("activity_task_scheduled_event_attributes") or local:
            summaries.append(event.user_metadata.summary.data.decode())
    # a life's set-up is one step now (its inbox, token id, account and manifest)
    assert '"Open the agent\'s inbox, token, account and manifest"' in summaries
    assert all(s.startswith('"') and s[1].isupper() for s in summaries)  # sentences, not names
