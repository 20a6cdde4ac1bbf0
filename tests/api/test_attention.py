"""Attention fed by chats, tuned by the agent; hosted agents that think with LangChain."""

from __future__ import annotations

import asyncio
import collections
import signal
from datetime import UTC, datetime

import pytest
from temporalio.api.enums.v1 import EventType

from core.names import agent_workflow_id
from persistence import AttentionRepository
from tests.conftest import eventually
from tests.helpers import group, introduce, json_of, worker_process


async def attention(api, agent):
    response = await api.get(f"/v1/agents/{agent.agent_id}/attention", headers=agent.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def direct(api, a, b) -> str:
    r = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [b.agent_id]}, headers=a.headers
    )
    return r.json()["chat_id"]


async def post(api, chat_id, agent, text):
    r = await api.post(
        f"/v1/chats/{chat_id}/messages", json={"content": text}, headers=agent.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_chats_feed_attention_and_the_focus_follows_the_scores(api, admin, database):
    me, ann, ben = [await introduce(api, admin, n) for n in ("Me", "Ann", "Ben")]
    busy = await group(api, ann, me, ben, topic="busy")
    quiet = await group(api, ben, me, topic="quiet")
    for i in range(3):
        await post(api, busy["chat_id"], ann, f"news {i}")
    view = await eventually(
        lambda: attention(api, me),
        lambda v: (
            {d["entry"]["chat_id"]: d["entry"]["unread"] for d in v["dialogues"]}.get(
                busy["chat_id"]
            )
            == 3
        ),
    )
    assert view["current_focus"] == busy["chat_id"]
    entries = {d["entry"]["chat_id"]: d for d in view["dialogues"]}
    assert entries[quiet["chat_id"]]["entry"]["unread"] == 0

    await post(api, quiet["chat_id"], ben, f"{me.agent_id}, a question for you")
    view = await eventually(
        lambda: attention(api, me), lambda v: v["current_focus"] == quiet["chat_id"]
    )
    assert {d["entry"]["chat_id"]: d["entry"]["mentioned"] for d in view["dialogues"]}[
        quiet["chat_id"]
    ]
    # the stored manifest follows within the projection interval (debounced writes)
    await eventually(
        lambda: json_of(api.get(f"/v1/agents/{me.agent_id}", headers=me.headers)),
        lambda m: m["current_activities"] == [f"attending chat {quiet['chat_id']}"],
    )

    tuned = await api.patch(
        f"/v1/agents/{me.agent_id}/attention",
        json={
            "weights": {"mentioned": 0, "unread": 10},
            "dialogues": {busy["chat_id"]: {"importance": 1.0}},
        },
        headers=me.headers,
    )
    assert tuned.status_code == 200 and tuned.json()["current_focus"] == busy["chat_id"]
    stored = await eventually(
        lambda: database.db["agent_attention_states"].find_one({"_id": me.agent_id}),
        lambda doc: doc is not None and doc["weights"]["unread"] == 10,
    )
    assert stored["current_focus"] == busy["chat_id"]

    await api.post(f"/v1/chats/{busy['chat_id']}/read", json={"up_to_seq": 3}, headers=me.headers)
    after = await eventually(
        lambda: attention(api, me),
        lambda v: (
            {d["entry"]["chat_id"]: d["entry"]["unread"] for d in v["dialogues"]}[busy["chat_id"]]
            == 0
        ),
    )
    assert after["current_focus"] == quiet["chat_id"]


def unread_in(view: dict, chat_id: str) -> int | None:
    return {d["entry"]["chat_id"]: d["entry"]["unread"] for d in view["dialogues"]}.get(chat_id)


async def test_a_read_mark_right_after_the_news_reaches_the_attention_in_a_quiet_chat(
    api, admin, settings
):
    """The news was told a moment ago, the reader marks it read, and nothing is posted
    after: the read mark waits out the notice interval and then arrives (it waited for
    the next post before: for ever, in a chat that went quiet)."""
    settings.notice_interval_seconds = 3.0
    me, ann = await introduce(api, admin, "Me"), await introduce(api, admin, "Ann")
    cid = await direct(api, ann, me)
    await post(api, cid, ann, "one")
    await eventually(lambda: attention(api, me), lambda v: unread_in(v, cid) == 1)
    r = await api.post(f"/v1/chats/{cid}/read", json={"up_to_seq": 1}, headers=me.headers)
    assert r.status_code == 200, r.text
    await eventually(lambda: attention(api, me), lambda v: unread_in(v, cid) == 0)


async def test_the_stored_attention_view_follows_the_live_one_within_its_interval(
    api, admin, database, settings
):
    """Every notice changes the attention view; the live route shows each change, the
    stored view (one write by ``_id`` each, a scan on FerretDB) at most one an interval,
    the newest winning."""
    settings.attention_projection_interval_seconds = 10.0
    settings.notice_interval_seconds = 0.0  # every post is a notice
    settings.group_notice_interval_seconds = 0.0  # in a group without floor control too
    me, ann = await introduce(api, admin, "Me"), await introduce(api, admin, "Ann")
    room = await group(api, ann, me)
    cid = room["chat_id"]
    stored = database.db["agent_attention_states"]

    async def stored_unread():
        doc = await stored.find_one({"_id": me.agent_id})
        return None if doc is None else unread_in(doc, cid)

    await post(api, cid, ann, "one")
    assert await eventually(stored_unread, lambda n: n == 1) == 1  # the first goes at once
    for text in ("two", "three", "four"):
        await post(api, cid, ann, text)
    await eventually(lambda: attention(api, me), lambda v: unread_in(v, cid) == 4)
    await asyncio.sleep(2)  # past the manifest's interval (1 s), within the attention's
    assert await stored_unread() == 1  # live at once; the store waits out its interval
    assert await eventually(stored_unread, lambda n: n == 4, timeout=25) == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"weights": {"floor": 11}}, 422),
        ({"weights": {"floor": -1}}, 422),
        ({"dialogues": {"no-such-chat": {"importance": 0.5}}}, 422),
        ({"scheduler": "lottery"}, 422),
        ({"focus": "x"}, 422),
    ],
)
async def test_bad_attention_tuning_is_422(api, admin, body, expected):
    me = await introduce(api, admin, "Me")
    response = await api.patch(f"/v1/agents/{me.agent_id}/attention", json=body, headers=me.headers)
    assert response.status_code == expected, response.text


async def test_attention_is_private(api, admin):
    me, other = await introduce(api, admin, "Me"), await introduce(api, admin, "Other")
    assert (
        await api.get(f"/v1/agents/{me.agent_id}/attention", headers=other.headers)
    ).status_code == 403
    assert (await api.get(f"/v1/agents/{me.agent_id}/attention")).status_code == 401
    assert (await api.get(f"/v1/agents/{me.agent_id}/attention", headers=admin)).status_code == 200


async def test_a_brain_with_an_unknown_provider_is_422(api, admin, database):
    response = await api.post(
        "/v1/agents", json={"name": "Odd", "brain": {"model": "nowhere:gpt-0"}}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "brain", "model"]
    assert await database.db["agents"].count_documents({}) == 0


async def test_a_hosted_agent_speaks_only_when_it_holds_the_floor(api, admin, database):
    host = await introduce(api, admin, "Host", brain={"persona": "You are a careful host."})
    ext = await introduce(api, admin, "Ext")
    room = await group(api, ext, host, speaker_policy="fifo", topic="turns")
    cid = room["chat_id"]
    await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
    await post(api, cid, ext, "Hello host, what do you think?")
    # the host asks for the floor by itself and waits: the external agent still holds it
    waiting = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers)),
        lambda f: [q["agent_id"] for q in f["queue"]] == [host.agent_id],
    )
    assert waiting["current_speaker"] == ext.agent_id
    assert (
        await database.db["messages"].count_documents({"chat_id": cid, "from": host.agent_id}) == 0
    )
    await api.delete(f"/v1/chats/{cid}/floor", headers=ext.headers)
    page = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)),
        lambda p: any(m["from"] == host.agent_id for m in p["items"]),
        timeout=30,
    )
    reply = next(m for m in page["items"] if m["from"] == host.agent_id)
    assert "offline model" in reply["content"] and "careful host" in reply["content"]
    floor = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers)),
        lambda f: f["current_speaker"] is None,
    )
    # it spoke and yielded, asking with its post for the next turn: a standing request,
    # which no policy grants before someone else has said something
    assert [(q["agent_id"], q["after_next_message"]) for q in floor["queue"]] == [
        (host.agent_id, True)
    ]
    await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)  # ext goes first
    granted = await json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers))
    assert granted["current_speaker"] == ext.agent_id
    answer = await api.post(
        f"/v1/chats/{cid}/messages",
        headers=ext.headers,
        json={"content": "Thank you. And then?", "yield": True},
    )
    assert answer.status_code == 201 and answer.json()["floor_yielded"] is True
    page = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)),
        lambda p: sum(m["from"] == host.agent_id for m in p["items"]) == 2,
        timeout=30,
    )  # the host's standing request was granted on ext's yield, and it answered
    assert [m["from"] for m in page["items"]][-2:] == [ext.agent_id, host.agent_id]


async def test_hosted_agents_take_turns_by_themselves_in_strict_rotation(api, admin):
    hosts = [await introduce(api, admin, f"H{i}", brain={"turns_per_hour": 1000}) for i in range(4)]
    ext = await introduce(api, admin, "Ext")
    room = await group(
        api, ext, *hosts, speaker_policy="round_robin", floor={"max_messages_per_turn": 1}
    )
    cid = room["chat_id"]
    await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
    opened = await api.post(
        f"/v1/chats/{cid}/messages", json={"content": "begin", "yield": True}, headers=ext.headers
    )
    assert opened.json()["floor_yielded"] is True
    page = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)),
        lambda p: len(p["items"]) >= 13,
        timeout=60,
    )
    speakers = [m["from"] for m in page["items"][1:13]]
    order = [h.agent_id for h in hosts]
    pairs = zip(speakers, speakers[1:], strict=False)
    assert all(order.index(b) == (order.index(a) + 1) % 4 for a, b in pairs), speakers
    turns = await json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers))
    hosted = [t for t in turns["recent_turns"] if t["agent_id"] in order]
    assert hosted and all(t["model_seconds"] is not None for t in hosted)
    assert all(
        t["overhead_seconds"] == pytest.approx(t["seconds"] - t["model_seconds"], abs=1e-3)
        for t in hosted
    )
    assert turns["turn_summary"]["overhead_seconds_p50"] is not None
    closed = await api.delete(f"/v1/chats/{cid}", headers=ext.headers)  # or they talk on
    assert closed.status_code == 200


async def test_a_hosted_agent_resumes_each_dialogue_with_its_saved_context(api, admin, database):
    host = await introduce(api, admin, "Host", brain={})
    a, b = await introduce(api, admin, "Aa"), await introduce(api, admin, "Bb")
    with_a, with_b = await direct(api, a, host), await direct(api, b, host)

    async def replies(chat_id, agent, n):
        page = await eventually(
            lambda: json_of(api.get(f"/v1/chats/{chat_id}/messages", headers=agent.headers)),
            lambda p: sum(m["from"] == host.agent_id for m in p["items"]) >= n,
            timeout=30,
        )
        return [m["content"] for m in page["items"] if m["from"] == host.agent_id]

    await post(api, with_a, a, "first question from a")
    await replies(with_a, a, 1)
    await post(api, with_b, b, "something else from b")
    await replies(with_b, b, 1)
    await post(api, with_a, a, "second question from a")
    second = (await replies(with_a, a, 2))[-1]
    # back in a's dialogue, the host recalls a's question and its own first answer
    assert "second question from a" in second
    assert "recall 2 earlier lines" in second
    saved = await eventually(  # saved beside the turn, not before the reply goes out
        lambda: AttentionRepository(database).get_context(host.agent_id, with_b),
        lambda c: c["history"] != [],
    )
    assert [line["content"] for line in saved["history"]] == ["something else from b"]
    raw = await database.db["dialogue_contexts"].find_one({"_id": f"{host.agent_id}|{with_b}"})
    assert "history" not in raw and b"something else" not in raw["sealed"]["ct"]


async def test_a_worker_that_stops_writes_the_contexts_that_wait(
    api_only, admin, settings, database
):
    """Contexts are written behind the turns, at most once an interval per dialogue; a
    worker stopped (SIGTERM) meanwhile writes what waits before it exits, so the agent
    resumes the dialogue on the next worker from its stored context."""
    api = api_only
    settings.context_save_seconds = 60  # far longer than the test: only the stop writes
    contexts = AttentionRepository(database)
    with worker_process(settings) as first:
        host = await introduce(api, admin, "Host", brain={})
        guest = await introduce(api, admin, "Guest")
        chat = await direct(api, guest, host)
        await post(api, chat, guest, "remember the blue door")
        await eventually(
            lambda: json_of(api.get(f"/v1/chats/{chat}/messages", headers=guest.headers)),
            lambda page: any(m["from"] == host.agent_id for m in page["items"]),
            timeout=30,
        )
        waiting = await contexts.get_context(host.agent_id, chat)
        assert waiting["history"] == [] and waiting["last_seq"] == 0  # it waits
        first.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.wait, 30) == 0
    saved = await contexts.get_context(host.agent_id, chat)
    assert saved["last_seq"] >= 1
    assert "remember the blue door" in [line["content"] for line in saved["history"]]


async def test_a_hosted_agent_stops_at_its_budget(api, admin, database):
    host = await introduce(api, admin, "Host", brain={"turns_per_hour": 1})
    a = await introduce(api, admin, "Aa")
    chat = await direct(api, a, host)
    await post(api, chat, a, "one")
    await eventually(
        lambda: database.db["messages"].count_documents({"chat_id": chat, "from": host.agent_id}),
        lambda n: n == 1,
        timeout=30,
    )
    await post(api, chat, a, "two")
    await eventually(
        lambda: attention(api, host),
        lambda v: all(d["entry"]["unread"] == 0 for d in v["dialogues"]),
        timeout=30,
    )
    assert (
        await database.db["messages"].count_documents({"chat_id": chat, "from": host.agent_id}) == 1
    )


async def test_a_failing_model_yields_the_floor_and_the_room_moves_on(api, admin, database):
    host = await introduce(api, admin, "Host", brain={"model": "offline:fail"})
    ext, other = await introduce(api, admin, "Ext"), await introduce(api, admin, "Oth")
    room = await group(api, ext, host, other, speaker_policy="fifo")
    cid = room["chat_id"]
    await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
    await post(api, cid, ext, "over to you, host")
    await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers)),
        lambda f: host.agent_id in [q["agent_id"] for q in f["queue"]],
    )
    await api.post(f"/v1/chats/{cid}/floor", json={}, headers=other.headers)
    await api.delete(f"/v1/chats/{cid}/floor", headers=ext.headers)
    # the host gets the floor, its model fails within bounds, it yields: other speaks next
    moved = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/floor", headers=ext.headers)),
        lambda f: f["current_speaker"] == other.agent_id,
        timeout=60,
    )
    assert moved["current_speaker"] == other.agent_id
    assert (
        await database.db["messages"].count_documents({"chat_id": cid, "from": host.agent_id}) == 0
    )


async def test_messages_carry_a_langchain_context_that_reaches_attention(api, admin):
    me, ann = await introduce(api, admin, "Me"), await introduce(api, admin, "Ann")
    room = await group(api, ann, me)
    cid = room["chat_id"]
    await post(api, cid, ann, f"Urgent: can {me.agent_id} check the deadline?")
    await post(api, cid, ann, "hello")
    page = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{cid}/messages", headers=me.headers)),
        # the processing step runs after delivery: a message read from the accepted tail
        # has no reading yet
        lambda p: len(p["items"]) == 2 and all(m["langchain_context"] for m in p["items"]),
    )
    urgent, hello = (m["langchain_context"] for m in page["items"])
    assert urgent == {"mentions": [me.agent_id], "importance": 1.0, "intent": "question"}
    assert hello["intent"] == "greeting" and hello["importance"] < urgent["importance"]
    view = await eventually(
        lambda: attention(api, me),
        lambda v: v["dialogues"] and v["dialogues"][0]["entry"]["message_importance"] == 1.0,
    )
    assert view["dialogues"][0]["entry"]["mentioned"] is True


async def test_a_notice_told_twice_counts_its_messages_once(api, admin, temporal_client):
    """The chat tells members' agents through an activity, which a retry may repeat: the
    agent counts a batch's messages once (by the notice's last seq)."""
    from core.names import AgentHandlers, agent_workflow_id
    from models.attention import DialogueNotice

    me, ann = await introduce(api, admin, "Me"), await introduce(api, admin, "Ann")
    room = await group(api, ann, me)
    cid = room["chat_id"]
    await post(api, cid, ann, "one")
    await eventually(
        lambda: attention(api, me),
        lambda v: any(
            d["entry"]["chat_id"] == cid and d["entry"]["unread"] == 1 for d in v["dialogues"]
        ),
    )
    handle = temporal_client.get_workflow_handle(agent_workflow_id(me.agent_id))
    notice = DialogueNotice(
        chat_id=cid, chat_type="group", new_messages=2, last_seq=3, at=datetime.now(UTC)
    )
    for _ in range(2):
        await handle.signal(AgentHandlers.DIALOGUE_NOTICE, notice)
    # then the next batch's notice (a mention, to see when it has arrived: signals come in order)
    after = notice.model_copy(update={"new_messages": 1, "last_seq": 4, "mentioned": True})
    await handle.signal(AgentHandlers.DIALOGUE_NOTICE, after)
    view = await eventually(
        lambda: attention(api, me),
        lambda v: any(
            d["entry"]["chat_id"] == cid and d["entry"]["mentioned"] for d in v["dialogues"]
        ),
    )
    unread = next(d["entry"]["unread"] for d in view["dialogues"] if d["entry"]["chat_id"] == cid)
    assert unread == 1 + 2 + 1


async def test_a_hosted_agent_s_loop_keeps_its_timer_across_turns(api, admin, temporal_client):
    """A busy agent's workflow tasks do not each cancel the loop's timer and start another
    for the same deadline (``steady-wake-timer``): the timer moves only when its
    deadline does."""
    ext = await introduce(api, admin, "Ext")
    hosts = [await introduce(api, admin, f"H{i}", brain={"turns_per_hour": 1000}) for i in range(2)]
    room = await group(
        api, ext, *hosts, speaker_policy="round_robin", floor={"max_messages_per_turn": 1}
    )
    cid = room["chat_id"]
    asked = await api.post(f"/v1/chats/{cid}/floor", json={}, headers=ext.headers)
    assert asked.status_code == 200
    go = await api.post(
        f"/v1/chats/{cid}/messages", json={"content": "go", "yield": True}, headers=ext.headers
    )
    assert go.status_code == 201

    async def page():
        return (await api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)).json()

    await eventually(page, lambda p: len(p["items"]) >= 11, timeout=60)
    assert (await api.delete(f"/v1/chats/{cid}", headers=ext.headers)).status_code == 200
    for host in hosts:
        handle = temporal_client.get_workflow_handle(agent_workflow_id(host.agent_id))
        kinds = collections.Counter(
            [EventType.Name(e.event_type) async for e in handle.fetch_history_events()]
        )
        tasks = kinds["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"]
        timers = kinds["EVENT_TYPE_TIMER_STARTED"]
        assert tasks >= 5, kinds  # it took its turns
        assert timers <= tasks // 2, kinds
