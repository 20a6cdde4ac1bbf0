"""Floor control through the API against the real services, with short durations."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from core.names import chat_workflow_id
from models.workflow_io import DeliverBatchInput, PostAnswer, PostMessage
from tests.conftest import eventually
from tests.helpers import Stream, group, introduce, json_of, worker_process


async def floor(api, chat_id, agent):
    return (await api.get(f"/v1/chats/{chat_id}/floor", headers=agent.headers)).json()


async def ask(api, chat_id, agent, **body):
    response = await api.post(f"/v1/chats/{chat_id}/floor", json=body, headers=agent.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def say(api, chat_id, agent, text="hi"):
    return await api.post(
        f"/v1/chats/{chat_id}/messages", json={"content": text}, headers=agent.headers
    )


async def test_fifo_turns_with_message_limits_and_yields(api, admin, database):
    a, b, c = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat")]
    chat = await group(api, a, b, c, speaker_policy="fifo", floor={"max_messages_per_turn": 2})
    cid = chat["chat_id"]
    assert chat["speaker_policy"] == "fifo"

    refused = await say(api, cid, a)
    assert refused.status_code == 409 and "request it first" in refused.json()["detail"]
    granted = await ask(api, cid, a, reason="opening")
    assert granted["you_hold_the_floor"] is True and granted["messages_left"] == 2
    waiting = await ask(api, cid, b)
    assert waiting["your_position"] == 1 and waiting["current_speaker"] == a.agent_id
    assert (await ask(api, cid, c))["your_position"] == 2

    held = await say(api, cid, b)
    assert held.status_code == 409 and a.agent_id in held.json()["detail"]
    assert (await say(api, cid, a, "one")).status_code == 201
    assert (await say(api, cid, a, "two")).status_code == 201  # the limit: b is next
    now = await floor(api, cid, b)
    assert now["current_speaker"] == b.agent_id and [q["agent_id"] for q in now["queue"]] == [
        c.agent_id
    ]
    assert (await say(api, cid, a, "three")).status_code == 409
    yielded = await api.delete(f"/v1/chats/{cid}/floor", headers=b.headers)
    assert yielded.status_code == 200
    assert (await floor(api, cid, c))["current_speaker"] == c.agent_id
    nothing = await api.delete(f"/v1/chats/{cid}/floor", headers=b.headers)
    assert nothing.status_code == 409
    projected = await eventually(
        lambda: database.db["speaker_queues"].find_one({"_id": cid}),
        lambda doc: doc is not None and doc["current_speaker"] == c.agent_id,
    )
    assert projected["queue"] == [] and projected["policy"] == "fifo"


async def test_the_time_slot_expires_and_the_next_is_granted(api, admin):
    a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    chat = await group(api, a, b, speaker_policy="fifo", floor={"turn_seconds": 1})
    cid = chat["chat_id"]
    await ask(api, cid, a)
    await ask(api, cid, b)
    moved = await eventually(
        lambda: floor(api, cid, b), lambda f: f["current_speaker"] == b.agent_id, timeout=10
    )
    assert moved["turn_ends_at"] is not None
    assert (await say(api, cid, a)).status_code == 409


async def test_priority_policy_grants_the_most_urgent_first(api, admin):
    a, b, c, d = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat", "Dan")]
    chat = await group(api, a, b, c, d, speaker_policy="priority")
    cid = chat["chat_id"]
    await ask(api, cid, a)  # a holds; the others wait
    await ask(api, cid, b, priority=1)
    await ask(api, cid, c, priority=9)
    await ask(api, cid, d, priority=9)
    await api.delete(f"/v1/chats/{cid}/floor", headers=a.headers)
    assert (await floor(api, cid, a))["current_speaker"] == c.agent_id
    await api.delete(f"/v1/chats/{cid}/floor", headers=c.headers)
    assert (await floor(api, cid, a))["current_speaker"] == d.agent_id


async def test_round_robin_and_random_policies(api, admin):
    a, b, c = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat")]
    rr = await group(api, a, b, c, speaker_policy="round_robin")
    order = [m["agent_id"] for m in rr["members"]]  # the chat's fixed order
    cid = rr["chat_id"]
    agents = {x.agent_id: x for x in (a, b, c)}
    spoke = []
    for _ in range(6):
        for x in (c, b, a):  # asked against the order: the policy, not arrival, decides
            await ask(api, cid, x)
        holder = (await floor(api, cid, a))["current_speaker"]
        spoke.append(holder)
        await api.delete(f"/v1/chats/{cid}/floor", headers=agents[holder].headers)
    # c asked first on a free floor; from then on the turn goes round the fixed order
    start = order.index(c.agent_id)
    assert spoke == [order[(start + i) % 3] for i in range(6)]

    rnd = await group(api, a, b, c, speaker_policy="random")
    for x in (a, b, c):
        await ask(api, rnd["chat_id"], x)
    state = await floor(api, rnd["chat_id"], a)
    assert state["current_speaker"] in agents
    assert len(state["queue"]) == 2


async def test_round_robin_waits_its_grace_for_a_member_back_for_another_turn(api, admin):
    a, b, c = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat")]
    slow_to_pass = {"max_messages_per_turn": 1, "round_robin_grace_seconds": 60}
    rr = await group(api, a, b, c, speaker_policy="round_robin", floor=slow_to_pass)
    cid = rr["chat_id"]
    agents = {x.agent_id: x for x in (a, b, c)}
    first, second, third = (agents[m["agent_id"]] for m in rr["members"])  # the fixed order

    async def holder():
        return (await floor(api, cid, a))["current_speaker"]

    async def turn(agent, again=True, yields=False):  # one message ends the turn (or a yield)
        assert await holder() == agent.agent_id
        await say(api, cid, agent)
        if yields:
            released = await api.delete(f"/v1/chats/{cid}/floor", headers=agent.headers)
            assert released.status_code == 200, released.text
        if again:
            await ask(api, cid, agent)

    for x in (first, second, third):
        await ask(api, cid, x)
    for x in (first, second, third):  # each spoke and came back: the rotation
        await turn(x)
    await turn(first, again=False)  # first says its piece and does not ask at once
    await turn(second)
    await turn(third)
    # second asks, but first is next and has come back each time: the floor waits for it
    held = await floor(api, cid, a)
    assert held["current_speaker"] is None and [q["agent_id"] for q in held["queue"]] == [
        second.agent_id,
        third.agent_id,
    ]
    await ask(api, cid, first)
    assert await holder() == first.agent_id

    # a short grace passes over who is late, by the chat's timer alone: the room goes
    # quiet, then second asks; the hold comes from that request, and nothing else
    # wakes the chat
    short = {"round_robin_grace_seconds": 1, "max_messages_per_turn": 5}
    changed = await api.patch(f"/v1/chats/{cid}/floor", json=short, headers=a.headers)
    assert changed.status_code == 200, changed.text
    for x in (first, second, third):
        await turn(x, again=False, yields=True)
    await ask(api, cid, second)
    await eventually(holder, lambda h: h == second.agent_id, timeout=30)


async def test_moderator_grants_by_hand(api, admin):
    owner, mod, m1, m2 = [await introduce(api, admin, n) for n in ("Own", "Mod", "Mia", "Max")]
    chat = await group(api, owner, mod, m1, m2, speaker_policy="moderator")
    cid = chat["chat_id"]
    await api.patch(
        f"/v1/chats/{cid}/members/{mod.agent_id}", json={"role": "moderator"}, headers=owner.headers
    )
    waiting = await ask(api, cid, m1)
    assert waiting["current_speaker"] is None and waiting["your_position"] == 1
    await ask(api, cid, m2)
    by_member = await api.post(
        f"/v1/chats/{cid}/floor/grant", json={"agent_id": m2.agent_id}, headers=m1.headers
    )
    assert by_member.status_code == 403
    not_asked = await api.post(
        f"/v1/chats/{cid}/floor/grant", json={"agent_id": owner.agent_id}, headers=mod.headers
    )
    assert not_asked.status_code == 409
    granted = await api.post(
        f"/v1/chats/{cid}/floor/grant", json={"agent_id": m2.agent_id}, headers=mod.headers
    )
    assert granted.status_code == 200 and granted.json()["current_speaker"] == m2.agent_id
    assert (await say(api, cid, m2)).status_code == 201


async def test_llm_policy_lets_the_model_pick_from_the_transcript(api, admin):
    a, b, c = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat")]
    chat = await group(api, a, b, c, speaker_policy="llm", topic="who knows best")
    cid = chat["chat_id"]
    await ask(api, cid, a)
    held = await eventually(lambda: floor(api, cid, a), lambda f: f["current_speaker"] is not None)
    assert held["current_speaker"] == a.agent_id
    assert (await say(api, cid, a, f"I think {c.agent_id} knows this best.")).status_code == 201
    await ask(api, cid, b)
    await ask(api, cid, c)
    await api.delete(f"/v1/chats/{cid}/floor", headers=a.headers)
    # the offline model names the candidate mentioned last: c, although b asked first
    picked = await eventually(
        lambda: floor(api, cid, a), lambda f: f["current_speaker"] is not None, timeout=20
    )
    assert picked["current_speaker"] == c.agent_id


async def test_rounds_end_by_max_turns_idle_and_termination_text(api, admin, server):
    a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    chat = await group(
        api,
        a,
        b,
        speaker_policy="fifo",
        floor={"max_turns": 2, "termination_text": "TERMINATE", "idle_timeout_seconds": 1},
    )
    cid = chat["chat_id"]
    await ask(api, cid, a)
    await api.delete(f"/v1/chats/{cid}/floor", headers=a.headers)
    await ask(api, cid, b)
    await api.delete(f"/v1/chats/{cid}/floor", headers=b.headers)
    after_two = await floor(api, cid, a)
    assert after_two["round"] == 1 and after_two["turns_in_round"] == 2
    await ask(api, cid, a)  # opens round 2
    state = await floor(api, cid, a)
    assert state["round"] == 2 and state["current_speaker"] == a.agent_id
    assert (await say(api, cid, a, "ok, TERMINATE")).status_code == 201
    assert (await floor(api, cid, a))["current_speaker"] is None
    await ask(api, cid, b)  # round 3; b then stays silent past the idle timeout
    idle = await eventually(
        lambda: floor(api, cid, a), lambda f: f["current_speaker"] is None, timeout=10
    )
    assert idle["round"] == 3


async def test_a_member_who_leaves_loses_the_floor_and_the_next_is_granted(api, admin):
    a, b, c = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat")]
    chat = await group(api, a, b, c, speaker_policy="fifo")
    cid = chat["chat_id"]
    await ask(api, cid, b)
    await ask(api, cid, c)
    assert (
        await api.delete(f"/v1/chats/{cid}/members/{b.agent_id}", headers=b.headers)
    ).status_code == 200
    assert (await floor(api, cid, a))["current_speaker"] == c.agent_id
    await api.delete(f"/v1/agents/{c.agent_id}", headers=admin)
    gone = await eventually(lambda: floor(api, cid, a), lambda f: f["current_speaker"] is None)
    assert gone["queue"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"speaker_policy": "loudest"}, "speaker_policy"),
        ({"speaker_policy": "fifo", "floor": {"turn_seconds": 0.5}}, "turn_seconds"),
        ({"speaker_policy": "fifo", "floor": {"turn_seconds": 3601}}, "turn_seconds"),
        (
            {"speaker_policy": "fifo", "floor": {"max_messages_per_turn": 0}},
            "max_messages_per_turn",
        ),
        (
            {"speaker_policy": "fifo", "floor": {"max_messages_per_turn": 1001}},
            "max_messages_per_turn",
        ),
        (
            {"speaker_policy": "round_robin", "floor": {"round_robin_grace_seconds": -1}},
            "round_robin_grace_seconds",
        ),
    ],
)
async def test_bad_floor_settings_are_422(api, admin, database, body, field):
    a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    response = await api.post(
        "/v1/chats", json={"type": "group", "participants": [b.agent_id]} | body, headers=a.headers
    )
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert await database.db["chats"].count_documents({}) == 0


async def test_floor_access_and_bad_requests(api, admin):
    owner, mem, guest, out = [await introduce(api, admin, n) for n in ("Own", "Mem", "Gus", "Out")]
    chat = await group(api, owner, mem, guest, speaker_policy="fifo")
    cid = chat["chat_id"]
    await api.patch(
        f"/v1/chats/{cid}/members/{guest.agent_id}", json={"role": "guest"}, headers=owner.headers
    )
    base = f"/v1/chats/{cid}/floor"
    assert (await api.post(base, json={}, headers=guest.headers)).status_code == 403
    assert (await api.post(base, json={}, headers=out.headers)).status_code == 404
    assert (await api.post(base, json={"priority": 11}, headers=mem.headers)).status_code == 422
    assert (await api.post(base, json={"priority": -1}, headers=mem.headers)).status_code == 422
    assert (await api.get(base, headers=guest.headers)).status_code == 200
    assert (
        await api.patch(base, json={"speaker_policy": "priority"}, headers=mem.headers)
    ).status_code == 403
    changed = await api.patch(
        base, json={"speaker_policy": "priority", "turn_seconds": 30}, headers=owner.headers
    )
    assert changed.status_code == 200 and changed.json()["speaker_policy"] == "priority"
    assert (
        await api.patch(base, json={"turn_seconds": 0}, headers=owner.headers)
    ).status_code == 422
    too_long = await api.patch(base, json={"round_robin_grace_seconds": 61}, headers=owner.headers)
    assert too_long.status_code == 422 and "round_robin_grace_seconds" in too_long.text
    assert (
        await api.post(base + "/grant", json={"agent_id": mem.agent_id}, headers=owner.headers)
    ).status_code == 409
    direct = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [mem.agent_id]}, headers=owner.headers
    )
    no_floor = await api.post(
        f"/v1/chats/{direct.json()['chat_id']}/floor", json={}, headers=owner.headers
    )
    assert no_floor.status_code == 409


async def test_killing_the_worker_mid_turn_keeps_the_grant_and_its_timer(api_only, admin, settings):
    api = api_only
    with worker_process(settings) as first:
        a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
        chat = await group(api, a, b, speaker_policy="fifo", floor={"turn_seconds": 15})
        cid = chat["chat_id"]
        await ask(api, cid, a)
        await ask(api, cid, b)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    await asyncio.sleep(1)
    with worker_process(settings):
        held = await floor(api, cid, a)
        assert held["current_speaker"] == a.agent_id  # not lost, not granted twice
        assert [q["agent_id"] for q in held["queue"]] == [b.agent_id]
        moved = await eventually(
            lambda: floor(api, cid, a), lambda f: f["current_speaker"] == b.agent_id, timeout=30
        )
        assert moved["queue"] == []


async def test_a_partial_floor_change_leaves_the_other_settings_alone(api, admin):
    owner, mem = await introduce(api, admin, "Own"), await introduce(api, admin, "Mem")
    chat = await group(api, owner, mem, speaker_policy="round_robin", floor={"max_turns": 8})
    base = f"/v1/chats/{chat['chat_id']}"
    one = await api.patch(f"{base}/floor", json={"max_messages_per_turn": 1}, headers=owner.headers)
    assert one.status_code == 200 and one.json()["speaker_policy"] == "round_robin"
    await ask(api, chat["chat_id"], mem)
    assert (await floor(api, chat["chat_id"], mem))["messages_left"] == 1
    # a null clears an optional limit; on a required setting it changes nothing
    cleared = await api.patch(
        f"{base}/floor", json={"max_turns": None, "speaker_policy": None}, headers=owner.headers
    )
    assert cleared.status_code == 200 and cleared.json()["speaker_policy"] == "round_robin"
    shown = (await api.get(base, headers=owner.headers)).json()
    assert shown["speaker_policy"] == "round_robin"


async def test_a_post_with_yield_ends_the_turn_in_one_call(api, admin):
    a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    chat = await group(api, a, b, speaker_policy="fifo", floor={"max_messages_per_turn": 5})
    cid = chat["chat_id"]
    await ask(api, cid, a)
    await ask(api, cid, b)
    kept = await api.post(f"/v1/chats/{cid}/messages", json={"content": "one"}, headers=a.headers)
    assert kept.status_code == 201 and kept.json()["floor_yielded"] is False
    last = await api.post(
        f"/v1/chats/{cid}/messages", json={"content": "two", "yield": True}, headers=a.headers
    )
    assert last.status_code == 201 and last.json()["floor_yielded"] is True
    now = await floor(api, cid, a)
    assert now["current_speaker"] == b.agent_id
    turn = now["recent_turns"][-1]
    assert turn["agent_id"] == a.agent_id and turn["messages"] == 2
    assert turn["ended_by"] == "yielded" and turn["seconds"] >= 0
    assert turn["model_seconds"] is None and turn["overhead_seconds"] is None  # not hosted
    assert now["turn_summary"]["turns"] == 1

    plain = await group(api, a, b)  # no floor control: yield means nothing there
    refused = await api.post(
        f"/v1/chats/{plain['chat_id']}/messages",
        json={"content": "bye", "yield": True},
        headers=a.headers,
    )
    assert refused.status_code == 409 and "no floor control" in refused.json()["detail"]
    listed = (await api.get(f"/v1/chats/{plain['chat_id']}/messages", headers=a.headers)).json()
    assert listed["items"] == []  # refused: nothing was posted
    bad = await api.post(
        f"/v1/chats/{cid}/messages", json={"content": "x", "yield": "yes"}, headers=b.headers
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "yield"


async def test_the_holder_hands_the_floor_over_within_the_ping_pong_bound(api, admin):
    a, b, c, outsider = [await introduce(api, admin, n) for n in ("Ann", "Ben", "Cat", "Out")]
    chat = await group(api, a, b, c, speaker_policy="fifo", floor={"max_handoffs_in_row": 2})
    cid = chat["chat_id"]

    async def handoff(agent, to):
        return await api.post(
            f"/v1/chats/{cid}/floor/handoff", json={"to": to.agent_id}, headers=agent.headers
        )

    await ask(api, cid, a)
    await ask(api, cid, b)
    before = await floor(api, cid, a)
    for who, to, why in (
        (a, outsider, "not a member"),
        (a, a, "to itself"),
        (b, c, "only the holder"),
        (a, c, "has not asked"),  # this chat hands over only to requesters
    ):
        refused = await handoff(who, to)
        assert refused.status_code == 409 and why in refused.json()["detail"], refused.text
    unchanged = await floor(api, cid, a)
    assert unchanged["current_speaker"] == a.agent_id and unchanged["queue"] == before["queue"]

    handed = await handoff(a, b)
    assert handed.status_code == 200 and handed.json()["current_speaker"] == b.agent_id
    await ask(api, cid, a)
    assert (await handoff(b, a)).json()["current_speaker"] == a.agent_id  # two in a row
    await ask(api, cid, b)
    third = await handoff(a, b)
    assert third.status_code == 409 and "2 handoffs in a row" in third.json()["detail"]
    assert (await floor(api, cid, a))["current_speaker"] == a.agent_id
    # the policy chooses instead: a yields, fifo grants b, and the count starts again
    await api.delete(f"/v1/chats/{cid}/floor", headers=a.headers)
    assert (await floor(api, cid, b))["current_speaker"] == b.agent_id
    await ask(api, cid, a)
    assert (await handoff(b, a)).status_code == 200

    await api.patch(f"/v1/chats/{cid}/floor", json={"handoff_to_any": True}, headers=a.headers)
    anyone = await handoff(a, c)  # c never asked: allowed now
    assert anyone.status_code == 200 and anyone.json()["current_speaker"] == c.agent_id
    events = [t["ended_by"] for t in anyone.json()["recent_turns"]]
    assert events.count("handoff") >= 3


async def test_a_round_ends_by_its_expression_or_the_owner_s_stop(api, admin, server):
    a, b = await introduce(api, admin, "Ann"), await introduce(api, admin, "Ben")
    body = {"type": "group", "participants": [b.agent_id]}
    body["floor"] = {"termination": "max_turns(3) and"}
    bad = await api.post("/v1/chats", json=body, headers=a.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "floor", "termination"]
    expression = 'text("agreed") and max_messages(3) or max_turns(50)'
    chat = await group(api, a, b, speaker_policy="fifo", floor={"termination": expression})
    cid = chat["chat_id"]
    patched = await api.patch(
        f"/v1/chats/{cid}/floor", json={"termination": "idle(5) or"}, headers=a.headers
    )
    assert patched.status_code == 422
    assert patched.json()["detail"][0]["loc"] == ["body", "termination"]
    await ask(api, cid, a)
    await ask(api, cid, b)
    async with Stream(server, b) as stream:
        for text in ("we have agreed", "two"):
            assert (await say(api, cid, a, text)).status_code == 201
        assert (await floor(api, cid, a))["current_speaker"] == a.agent_id  # 2 messages: not yet
        assert (await say(api, cid, a, "three")).status_code == 201
        seen = await stream.until(lambda e: e["type"] == "chat.round_ended")
    ended = seen[-1]["payload"]
    assert ended["reason"] == "termination"
    assert ended["conditions"] == ['text("agreed")', "max_messages(3)"]
    assert (await floor(api, cid, a))["current_speaker"] is None

    await ask(api, cid, b)  # a new round: b holds it
    refused = await api.post(f"/v1/chats/{cid}/floor/stop", headers=b.headers)
    assert refused.status_code == 403
    stopped = await api.post(f"/v1/chats/{cid}/floor/stop", headers=a.headers)
    assert stopped.status_code == 200 and stopped.json()["current_speaker"] is None
    again = await api.post(f"/v1/chats/{cid}/floor/stop", headers=a.headers)
    assert again.status_code == 409 and "ended already" in again.json()["detail"]


async def test_a_worker_killed_mid_round_resumes_hosted_turns_in_the_same_order(
    api_only, admin, settings
):
    api = api_only
    with worker_process(settings) as first:
        hosts = [
            await introduce(api, admin, f"H{i}", brain={"turns_per_hour": 1000}) for i in range(3)
        ]
        ext = await introduce(api, admin, "Ext")
        # the rotation waits for a host whose workflow the restart holds back (a workflow
        # task of the killed worker times out after ten seconds) rather than pass over it
        floor_settings = {"max_messages_per_turn": 1, "round_robin_grace_seconds": 20}
        room = await group(api, ext, *hosts, speaker_policy="round_robin", floor=floor_settings)
        cid = room["chat_id"]
        await ask(api, cid, ext)
        await api.post(
            f"/v1/chats/{cid}/messages", json={"content": "go", "yield": True}, headers=ext.headers
        )

        async def page():
            return (await api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)).json()

        await eventually(page, lambda p: len(p["items"]) >= 5, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)  # mid-round: some agent is mid-turn
        first.wait()
    with worker_process(settings):
        before = len((await eventually(page, lambda p: "items" in p))["items"])
        done = await eventually(page, lambda p: len(p["items"]) >= before + 6, timeout=90)
        recent = (await floor(api, cid, ext))["recent_turns"]
        await api.delete(f"/v1/chats/{cid}", headers=ext.headers)
    items = done["items"]
    assert [m["seq"] for m in items] == list(range(1, len(items) + 1))  # no gap, no repeat
    # the floor's own record of its turns keeps the round-robin order across the kill; a
    # turn that said nothing (on a machine loaded enough for the model's bounded calls to
    # give up) is still a turn in that order, and is shown as one
    order = [h.agent_id for h in hosts]
    # a host granted the floor speaks or lets go: none sits out its time slot (a post
    # lost with the killed worker's workflow task once made the next turn's post a
    # repeat of it, answered as taken, and the host said nothing for 60 s)
    assert [t for t in recent if t["ended_by"] == "expired"] == [], recent
    turns = [t["agent_id"] for t in recent if t["agent_id"] in order]
    pairs = zip(turns, turns[1:], strict=False)
    assert all(order.index(b) == (order.index(a) + 1) % 3 for a, b in pairs), turns
    # every host spoke again after the restart
    assert {m["from"] for m in items[before:]} == set(order)


async def unread(api, chat_id, agent) -> int:
    view = await json_of(api.get(f"/v1/agents/{agent.agent_id}/attention", headers=agent.headers))
    return {d["entry"]["chat_id"]: d["entry"]["unread"] for d in view["dialogues"]}[chat_id]


@pytest.mark.parametrize("policy, at_once", [("moderator", True), ("fifo", False)])
async def test_a_floor_chat_tells_its_listeners_at_once_only_where_they_ask_on_news(
    api, admin, settings, policy, at_once
):
    """Where members ask for the floor when they hear news (a moderator grants, or a
    model picks), every batch is told at once; where a policy grants by itself, hosted
    speakers ask with their post, and news for the listeners waits the interval."""
    settings.notice_interval_seconds = 30.0
    owner, listener = await introduce(api, admin, "Own"), await introduce(api, admin, "Lis")
    cid = (
        await group(api, owner, listener, speaker_policy=policy, floor={"max_messages_per_turn": 5})
    )["chat_id"]
    await ask(api, cid, owner)
    if policy == "moderator":
        granted = await api.post(
            f"/v1/chats/{cid}/floor/grant",
            json={"agent_id": owner.agent_id},
            headers=owner.headers,
        )
        assert granted.status_code == 200
    assert (await say(api, cid, owner, "first")).status_code == 201  # after quiet: at once
    await eventually(lambda: unread(api, cid, listener), lambda n: n == 1)
    assert (await say(api, cid, owner, "second")).status_code == 201
    if at_once:
        await eventually(lambda: unread(api, cid, listener), lambda n: n == 2, timeout=10)
    else:
        await asyncio.sleep(3)  # well past a batch, well within the 30 s interval
        assert await unread(api, cid, listener) == 1


async def test_a_hosted_turn_hands_the_floor_over_in_its_post_s_answer(api, admin, temporal_client):
    """The grant a hosted turn's post makes rides back on the post's answer, and the
    posting agent's activity tells the next speaker: the chat's deliver step sends no
    grant notice for it (one hop fewer a turn), and the room still goes round in order."""
    ext = await introduce(api, admin, "Ext")
    hosts = [await introduce(api, admin, f"H{i}", brain={"turns_per_hour": 1000}) for i in range(2)]
    room = await group(
        api, ext, *hosts, speaker_policy="round_robin", floor={"max_messages_per_turn": 1}
    )
    cid = room["chat_id"]
    await ask(api, cid, ext)
    go = await api.post(
        f"/v1/chats/{cid}/messages", json={"content": "go", "yield": True}, headers=ext.headers
    )
    assert go.status_code == 201
    assert set(go.json()) == {"message_id", "seq", "floor_yielded"}  # the handover stays inside

    async def page():
        return (await api.get(f"/v1/chats/{cid}/messages", headers=ext.headers)).json()

    await eventually(page, lambda p: len(p["items"]) >= 7, timeout=60)
    assert (await api.delete(f"/v1/chats/{cid}", headers=ext.headers)).status_code == 200

    converter = temporal_client.data_converter
    history = await temporal_client.get_workflow_handle(chat_workflow_id(cid)).fetch_history()
    posts, answers, granted_by_the_chat = {}, [], []
    for event in history.events:
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == "post_message":
                [post] = await converter.decode(request.input.args.payloads, [PostMessage])
                posts[event.event_id] = post
        elif event.HasField("workflow_execution_update_completed_event_attributes"):
            done = event.workflow_execution_update_completed_event_attributes
            post = posts.get(done.accepted_event_id)
            if post is not None and post.ask_again:
                payloads = done.outcome.success.payloads
                [answer] = await converter.decode(payloads, [PostAnswer])
                answers.append((post.sender, answer))
        elif event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "deliver_batch":
                [batch] = await converter.decode(scheduled.input.payloads, [DeliverBatchInput])
                granted_by_the_chat += [a for a, n in batch.notices.items() if n.floor == "granted"]
    order = [h.agent_id for h in hosts]
    handed = [(sender, answer) for sender, answer in answers if answer.floor_yielded]
    assert len(handed) >= 4, answers
    stored = {m["seq"]: m for m in (await page())["items"]}
    for sender, answer in handed:
        assert answer.handover_to == order[(order.index(sender) + 1) % 2], (sender, answer)
        assert answer.handover is not None and answer.handover.floor == "granted"
        # the accepted message itself, which the posting worker keeps for the next turn
        said = answer.message
        assert said is not None and (said.seq, said.from_) == (answer.seq, sender), answer
        assert said.content == stored[said.seq]["content"]
    # of the hosts' grants, only the first (on the external member's yield, which asks
    # for nothing more) went through the chat's deliver step
    assert len([a for a in granted_by_the_chat if a in order]) <= 1, granted_by_the_chat
