"""Observer streams, dead letters and the reads the console needs, against the real stack."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.conftest import eventually
from tests.helpers import bearer, dead_letter, group, in_seconds, introduce


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


async def _ticket(http, headers, **scope) -> dict:
    response = await http.post("/v1/observe/ticket", json=scope, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _ready(connection) -> None:
    """The observer's first frame says it is bound: what is posted after it is seen."""
    hello = json.loads(await asyncio.wait_for(connection.recv(), 15))
    assert hello["type"] == "observer.ready"


async def _events(connection, until, timeout: float = 15) -> list[dict]:
    seen = []
    while True:
        seen.append(json.loads(await asyncio.wait_for(connection.recv(), timeout)))
        if until(seen[-1]):
            return seen


async def _say(http, chat: dict, agent, content: str) -> None:
    posted = await http.post(
        f"/v1/chats/{chat['chat_id']}/messages", json={"content": content}, headers=agent.headers
    )
    assert posted.status_code == 201, posted.text


def _sent(content: str):
    return lambda e: e["type"] == "message.sent" and e["payload"]["message"]["content"] == content


async def test_an_admin_watches_one_room_without_being_a_member_and_it_is_audited(
    http, server, admin
):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    watched = await group(http, ada, bob, topic="watched", join_rule="invite")
    other = await group(http, ada, bob, topic="other")
    ticket = await _ticket(http, admin, chat_id=watched["chat_id"])
    url = server.replace("http", "ws", 1) + f"/v1/observe?ticket={ticket['ticket']}"
    async with websockets.connect(url, open_timeout=10) as connection:
        await _ready(connection)
        await _say(http, other, ada, "elsewhere")
        await _say(http, watched, ada, "here")
        seen = await _events(connection, _sent("here"))
    contents = [e["payload"]["message"]["content"] for e in seen if e["type"] == "message.sent"]
    assert contents == ["here"]
    # the ticket opened one stream: a second use is refused
    async with websockets.connect(url, open_timeout=10) as again:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(again.recv(), 10)
    assert closed.value.rcvd.code == 4401
    audit = await http.get("/v1/audit", params={"action": "WS /v1/observe"}, headers=admin)
    records = [r for r in audit.json()["items"] if r["action"] == "WS /v1/observe"]
    assert {"actor": "admin", "target": f"chat:{watched['chat_id']}", "outcome": "allowed"} in [
        {k: r[k] for k in ("actor", "target", "outcome")} for r in records
    ]
    assert any(r["status"] == 4401 for r in records)


async def test_an_operator_watches_a_private_room_it_is_not_in(http, server, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    private = await group(http, ada, bob, topic="closed doors", join_rule="invite")
    made = await http.post(
        "/v1/operators", json={"operator_id": f"ops-{ada.agent_id}", "name": "Ops"}, headers=admin
    )
    assert made.status_code == 201, made.text
    operator = bearer(made.json()["token"])
    ticket = await _ticket(http, operator, chat_id=private["chat_id"], types=["message.sent"])
    url = server.replace("http", "ws", 1) + f"/v1/observe?ticket={ticket['ticket']}"
    async with websockets.connect(url, open_timeout=10) as connection:
        await _ready(connection)
        await _say(http, private, ada, "seen by ops")
        seen = await _events(connection, _sent("seen by ops"))
    assert seen[-1]["payload"]["message"]["chat_id"] == private["chat_id"]
    # the header form of the same stream, with the scope in the query
    url = server.replace("http", "ws", 1) + f"/v1/observe?chat_id={private['chat_id']}"
    async with websockets.connect(url, additional_headers=operator, open_timeout=10) as again:
        await _ready(again)
        await _say(http, private, ada, "seen again")
        assert (await _events(again, _sent("seen again")))[-1]["type"] == "message.sent"


async def test_an_agent_observer_sees_only_what_its_inbox_would(http, server, admin):
    ada, bob, cy = [await introduce(http, admin, n) for n in ("Ada", "Bob", "Cy")]
    theirs = await group(http, ada, bob, topic="private", join_rule="invite")
    ours = await group(http, ada, cy, topic="ours")
    # a private room of others is hidden, as for a read
    refused = await http.post(
        "/v1/observe/ticket", json={"chat_id": theirs["chat_id"]}, headers=cy.headers
    )
    assert refused.status_code == 404
    ticket = await _ticket(http, cy.headers, types=["message.sent"])
    url = server.replace("http", "ws", 1) + f"/v1/observe?ticket={ticket['ticket']}"
    async with websockets.connect(url, open_timeout=10) as connection:
        await _ready(connection)
        await _say(http, theirs, ada, "not for cy")
        await _say(http, ours, ada, "for cy")
        seen = await _events(connection, _sent("for cy"))
    assert [e["payload"]["message"]["content"] for e in seen] == ["for cy"]
    # watching takes nothing from the inbox: the agent's own stream still gets the message
    stream = server.replace("http", "ws", 1) + f"/v1/agents/{cy.agent_id}/stream"
    async with websockets.connect(stream, additional_headers=cy.headers) as inbox:
        got = await _events(inbox, _sent("for cy"))
    assert got[-1]["payload"]["message"]["chat_id"] == ours["chat_id"]


async def test_observer_tickets_refuse_bad_scopes_and_open_no_inbox(http, server, admin):
    ada = await introduce(http, admin, "Ada")
    bad = await http.post("/v1/observe/ticket", json={"types": ["Not A Type"]}, headers=admin)
    assert bad.status_code == 422
    assert "types" in json.dumps(bad.json()["detail"])
    missing = await http.post("/v1/observe/ticket", json={"chat_id": "nope"}, headers=admin)
    assert missing.status_code == 404
    anonymous = await http.post("/v1/observe/ticket", json={})
    assert anonymous.status_code == 401
    # an observer's ticket is not a stream ticket: the inbox stays closed to it
    ticket = await _ticket(http, ada.headers)
    inbox = server.replace("http", "ws", 1)
    inbox += f"/v1/agents/{ada.agent_id}/stream?ticket={ticket['ticket']}"
    async with websockets.connect(inbox, open_timeout=10) as connection:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd.code == 4401
    # a token in the URL is refused, like on the inbox stream
    url = server.replace("http", "ws", 1) + f"/v1/observe?token={ada.token}"
    async with websockets.connect(url, open_timeout=10) as connection:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd.code == 4401


async def test_an_admin_sees_the_dead_letters_and_replays_them_others_may_not(
    http, server, admin, bus
):
    ada = await introduce(http, admin, "Ada")
    event = await dead_letter(bus, ada.agent_id)
    assert (await http.get("/v1/events/dead-letters", headers=ada.headers)).status_code == 403
    refused = await http.post("/v1/events/dead-letters/replay", headers=ada.headers)
    assert refused.status_code == 403
    listed = (await http.get("/v1/events/dead-letters", headers=admin)).json()["items"]
    [letter] = [d for d in listed if d["event_id"] == event.event_id]
    assert letter["type"] == "test.unhandled" and letter["reason"] == "rejected"
    replayed = (await http.post("/v1/events/dead-letters/replay", headers=admin)).json()
    assert event.event_id in [d["event_id"] for d in replayed["items"]]
    after = (await http.get("/v1/events/dead-letters", headers=admin)).json()["items"]
    assert event.event_id not in [d["event_id"] for d in after]
    # back where it died: the agent's stream gets it again
    stream_url = server.replace("http", "ws", 1) + f"/v1/agents/{ada.agent_id}/stream"
    async with websockets.connect(stream_url, additional_headers=ada.headers) as stream:
        got = await _events(stream, lambda e: e["event_id"] == event.event_id)
    assert got[-1]["type"] == "test.unhandled"


async def test_a_room_opens_at_its_end_and_pages_back(http, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    chat = await group(http, ada, bob, topic="long")
    base = f"/v1/chats/{chat['chat_id']}/messages"
    for i in range(12):
        posted = await http.post(base, json={"content": f"m{i + 1}"}, headers=ada.headers)
        assert posted.status_code == 201
    pages, before = [], 2**53 - 1
    while before is not None:
        page = (
            await http.get(base, params={"before_seq": before, "limit": 5}, headers=bob.headers)
        ).json()
        pages.append([m["seq"] for m in page["items"]])
        before = page["next_before_seq"]
    assert pages == [[8, 9, 10, 11, 12], [3, 4, 5, 6, 7], [1, 2]]
    both = await http.get(base, params={"before_seq": 5, "after_seq": 1}, headers=bob.headers)
    assert both.status_code == 422 and "before_seq" in json.dumps(both.json())


async def test_the_manifest_keeps_a_history_of_its_page_and_attention_shows_its_parts(http, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    me = f"/v1/agents/{ada.agent_id}"
    changed = await http.patch(me, json={"public_profile": {"bio": "counts"}}, headers=ada.headers)
    assert changed.status_code == 200, changed.text

    async def history():
        return (await http.get(f"{me}/history", headers=ada.headers)).json()["items"]

    items = await eventually(history, lambda xs: any("public_profile" in x["changed"] for x in xs))
    assert items[0]["page"]["public_profile"]["bio"] == "counts"
    assert items[-1]["version"] == 0  # the first page is the oldest entry
    assert (await http.get(f"{me}/history", headers=bob.headers)).status_code == 403

    chat = await group(http, bob, ada, topic="parts")
    await http.post(
        f"/v1/chats/{chat['chat_id']}/messages",
        json={"content": f"hi @{ada.agent_id}"},
        headers=bob.headers,
    )

    async def attention():
        return (await http.get(f"{me}/attention", headers=ada.headers)).json()

    view = await eventually(attention, lambda v: any(d["entry"]["unread"] for d in v["dialogues"]))
    for dialogue in view["dialogues"]:
        assert set(dialogue["parts"]) >= {"importance", "mentioned", "floor", "unread", "recency"}
        assert sum(dialogue["parts"].values()) == pytest.approx(dialogue["score"], abs=1e-3)
    assert view["recent_focus"][-1]["to"] == view["current_focus"]


async def test_a_tasks_ledger_is_for_its_parties(http, admin):
    poster, stranger = [await introduce(http, admin, n) for n in ("Poster", "Stranger")]
    minted = await http.post(
        f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 50}, headers=admin
    )
    assert minted.status_code == 201, minted.text
    task = await http.post(
        "/v1/tasks",
        json={"title": "sum", "reward": 20, "deadline": in_seconds(3600)},
        headers=poster.headers,
    )
    assert task.status_code == 201, task.text
    path = f"/v1/tasks/{task.json()['task_id']}/ledger"

    async def ledger():
        return (await http.get(path, headers=poster.headers)).json()

    entries = await eventually(ledger, lambda xs: len(xs) >= 1)
    assert entries[0]["amount"] == 20 and entries[0]["debit"].endswith(poster.agent_id)
    refused = await http.get(path, headers=bearer(stranger.token))
    assert refused.status_code == 403 and "poster" in refused.json()["detail"]


async def test_a_hosted_members_inbox_gets_no_copy_of_its_room_and_its_observer_sees_it(
    http, server, admin
):
    """A hosted agent hears its rooms through its workflow; a copy in its inbox queue would
    wait there unread for ever. The room's events leave its inbox out, still name it, and
    an observer stream with its token shows them; an external member's inbox gets them."""
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    hal, hugo = [
        await introduce(http, admin, n, brain={"turns_per_hour": 1000}) for n in ("Hal", "Hugo")
    ]
    room = await group(http, ada, bob, hal, topic="quiet inboxes")
    invited = await http.post(
        f"/v1/chats/{room['chat_id']}/members",
        json={"agent_id": hugo.agent_id},
        headers=ada.headers,
    )
    assert invited.status_code == 201, invited.text
    hosted = {m["agent_id"]: m["hosted"] for m in invited.json()["members"]}
    assert hosted == {
        ada.agent_id: False,
        bob.agent_id: False,
        hal.agent_id: True,
        hugo.agent_id: True,
    }
    ticket = await _ticket(http, hal.headers, chat_id=room["chat_id"])
    url = server.replace("http", "ws", 1) + f"/v1/observe?ticket={ticket['ticket']}"
    async with websockets.connect(url, open_timeout=10) as connection:
        await _ready(connection)
        await _say(http, room, ada, "hello, all")
        seen = await _events(connection, _sent("hello, all"))
    assert hal.agent_id in seen[-1]["recipients"]

    async def inbox(agent, wait: float) -> list[dict]:
        polled = await http.get(
            f"/v1/agents/{agent.agent_id}/events", params={"wait": wait}, headers=agent.headers
        )
        assert polled.status_code == 200, polled.text
        return polled.json()["events"]

    def of_room(events: list[dict]) -> list[str]:
        return [
            e["type"]
            for e in events
            if e["payload"].get("chat_id") == room["chat_id"]
            or e["payload"].get("message", {}).get("chat_id") == room["chat_id"]
        ]

    # Bob's copy arrived: the batch's copies were all confirmed by then
    bobs = await eventually(lambda: inbox(bob, 5), lambda events: "message.sent" in of_room(events))
    assert "message.sent" in of_room(bobs)
    assert of_room(await inbox(hal, 3)) == []  # an empty inbox answers after 3 s
    assert of_room(await inbox(hugo, 3)) == []
