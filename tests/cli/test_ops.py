"""``agora agents|chats|events`` against the running stack (the API served by uvicorn)."""

from __future__ import annotations

import asyncio
import uuid

from typer.testing import CliRunner

from bus import EventBus
from cli.main import app
from tests.conftest import eventually
from tests.helpers import dead_letter, group, introduce

runner = CliRunner()


def _env(server: str, settings, tmp_path) -> dict[str, str]:
    return {
        "AGORA_HOME": str(tmp_path / "home"),
        "AGORA_API_URL": server,
        "AGORA_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "AGORA_AMQP_URL": settings.amqp_url,
        "AGORA_BUS_PREFIX": settings.bus_prefix,
        "COLUMNS": "200",
    }


async def agora(env: dict[str, str], *args: str):
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_agents_list_show_retire_and_unknown_ids(server, admin, settings, tmp_path):
    import httpx

    env = _env(server, settings, tmp_path)
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        ada = await introduce(api, admin, "Ada")
    listed = await agora(env, "agents", "list", "--name", "Ada")
    assert listed.exit_code == 0 and ada.agent_id in listed.output
    shown = await agora(env, "agents", "show", ada.agent_id)
    assert shown.exit_code == 0 and '"status": "active"' in shown.output
    retired = await agora(env, "agents", "retire", ada.agent_id, "--yes")
    assert retired.exit_code == 0 and "retired" in retired.output
    for args in (
        ("agents", "show", "nobody-here"),
        ("agents", "retire", "nobody-here", "--yes"),
        ("chats", "show", "no-chat"),
        ("chats", "transcript", "no-chat"),
    ):
        missing = await agora(env, *args)
        assert missing.exit_code == 1, args
        assert "404" in missing.output and "Traceback" not in missing.output
        assert len(missing.output.strip().splitlines()) == 1
    down = await agora(env | {"AGORA_API_URL": "http://127.0.0.1:9"}, "agents", "list")
    assert down.exit_code == 2 and "does not answer" in down.output


async def test_chats_show_and_a_followed_transcript(server, admin, settings, tmp_path):
    import httpx

    env = _env(server, settings, tmp_path)
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        a = await introduce(api, admin, "Tell")
        b = await introduce(api, admin, "Hear")
        chat = await group(api, a, b, topic="stories")
        url = f"/v1/chats/{chat['chat_id']}/messages"
        await api.post(url, json={"content": "once upon a time"}, headers=a.headers)
        listed = await agora(env, "chats", "list")
        assert listed.exit_code == 0 and chat["chat_id"] in listed.output
        shown = await agora(env, "chats", "show", chat["chat_id"])
        assert shown.exit_code == 0 and "stories" in shown.output and b.agent_id in shown.output
        follow = asyncio.create_task(
            agora(env, "chats", "transcript", chat["chat_id"], "--follow", "--for", "6")
        )
        await asyncio.sleep(2)
        await api.post(url, json={"content": "the end"}, headers=b.headers)
        followed = await follow
    assert followed.exit_code == 0
    assert "once upon a time" in followed.output and "the end" in followed.output


async def test_events_tail_dead_and_replay(server, admin, settings, bus: EventBus, tmp_path):
    import httpx

    from models.events import EventEnvelope

    env = _env(server, settings, tmp_path)
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        tail = asyncio.create_task(agora(env, "events", "tail", "--type", "agent.*", "--for", "6"))
        await asyncio.sleep(2)
        who = await introduce(api, admin, "Loud")
        tailed = await tail
    assert tailed.exit_code == 0 and "agent.introduced" in tailed.output
    assert who.agent_id in tailed.output

    event = await dead_letter(bus, who.agent_id)
    inbox = await bus.channel.get_queue(bus.topology.inbox_queue(who.agent_id))

    async def take():
        return await inbox.get(no_ack=False, fail=False)

    dead = await agora(env, "events", "dead")
    assert dead.exit_code == 0 and event.event_id in dead.output and "rejected" in dead.output
    replayed = await agora(env, "events", "replay")
    assert replayed.exit_code == 0 and event.event_id in replayed.output
    back = await eventually(take, lambda m: m is not None)
    assert EventEnvelope.model_validate_json(back.body).event_id == event.event_id
    await back.ack()
    empty = await agora(env, "events", "dead")
    assert "0 dead letter(s)" in empty.output


async def test_agents_import_introduces_a_file_in_batches_and_names_a_refused_line(
    server, admin, settings, tmp_path, database
):
    import json
    import os

    import httpx

    env = _env(server, settings, tmp_path)
    run = uuid.uuid4().hex[:6]
    lines = [{"agent_id": f"imp{i}-{run}", "name": f"Imp {i}"} for i in range(7)]
    source = tmp_path / "agents.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = await agora(env, "agents", "import", str(source), "--batch", "3")
    assert done.exit_code == 0, done.output
    assert "7 agents introduced" in done.output
    tokens_file = tmp_path / "agents.jsonl.tokens.jsonl"
    assert os.stat(tokens_file).st_mode & 0o777 == 0o600
    issued = [json.loads(line) for line in tokens_file.read_text().splitlines()]
    assert [t["agent_id"] for t in issued] == [line["agent_id"] for line in lines]
    for token in issued:
        assert token["token"] not in done.output  # written to the file, never printed
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        mine = await api.get(
            f"/v1/agents/{issued[4]['agent_id']}",
            headers={"Authorization": f"Bearer {issued[4]['token']}"},
        )
        assert mine.status_code == 200 and mine.json()["public_profile"]["name"] == "Imp 4"

    again = tmp_path / "again.jsonl"  # line 2 is taken: its batch makes nobody
    fresh = {"agent_id": f"fresh-{run}", "name": "Fresh"}
    again.write_text(json.dumps(fresh) + "\n" + json.dumps(lines[0]) + "\n")
    refused = await agora(env, "agents", "import", str(again))
    assert refused.exit_code == 1 and f"{again}:2: 409" in refused.output
    assert await database.db["agents"].count_documents({"_id": fresh["agent_id"]}) == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"name": "Ok"}\nnot json\n')
    bad = await agora(env, "agents", "import", str(broken))
    assert bad.exit_code == 1 and f"{broken}:2: not a JSON object" in bad.output
