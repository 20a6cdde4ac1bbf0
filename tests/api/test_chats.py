"""Chats through the API against the real services: direct and group chats, roles, messages,
history, receipts and membership changes."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import eventually
from tests.helpers import Agent, group, introduce, json_of


async def manifest(api, agent: Agent) -> dict:
    return (await api.get(f"/v1/agents/{agent.agent_id}", headers=agent.headers)).json()


async def test_a_direct_chat_is_the_pairs_one_chat(api, admin):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    first = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [bob.agent_id]}, headers=ada.headers
    )
    assert first.status_code == 201
    chat = first.json()
    assert chat["type"] == "direct"
    assert {m["agent_id"]: m["role"] for m in chat["members"]} == {
        ada.agent_id: "member",
        bob.agent_id: "member",
    }
    again = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [ada.agent_id]}, headers=bob.headers
    )
    assert again.status_code == 200
    assert again.json()["chat_id"] == chat["chat_id"]
    for agent in (ada, bob):
        rooms = await eventually(
            lambda agent=agent: manifest(api, agent),
            lambda m: chat["chat_id"] in m["room_participation"],
        )
        assert rooms["room_participation"] == [chat["chat_id"]]


@pytest.mark.parametrize(
    ("participants", "expected"),
    [(["self"], 422), (["retired"], 422), (["nobody-x"], 404), ([], 422)],
)
async def test_bad_direct_chats_change_nothing(api, admin, database, participants, expected):
    ada = await introduce(api, admin, "Ada")
    old = await introduce(api, admin, "Old")
    await api.delete(f"/v1/agents/{old.agent_id}", headers=admin)
    names = {"self": ada.agent_id, "retired": old.agent_id}
    body = {"type": "direct", "participants": [names.get(p, p) for p in participants]}
    response = await api.post("/v1/chats", json=body, headers=ada.headers)
    assert response.status_code == expected, response.text
    assert await database.db["chats"].count_documents({}) == 0


async def test_group_roles_for_every_chat_endpoint(api, admin):
    owner, adm, mem, guest, outsider, newbie = [
        await introduce(api, admin, n) for n in ("Owner", "Adm", "Mem", "Guest", "Out", "New")
    ]
    chat = await group(api, owner, adm, mem, guest, topic="roles")
    cid = chat["chat_id"]
    assert chat["members"][0] == {**chat["members"][0], "agent_id": owner.agent_id, "role": "owner"}
    base = f"/v1/chats/{cid}"

    async def call(method, path, who, json=None):
        kwargs = {"headers": who.headers if who else {}} | ({"json": json} if json else {})
        return (await api.request(method, base + path, **kwargs)).status_code

    assert await call("PATCH", f"/members/{adm.agent_id}", owner, {"role": "admin"}) == 200
    assert await call("PATCH", f"/members/{guest.agent_id}", adm, {"role": "guest"}) == 200

    # anonymous and outsiders: 401 and 404 (the chat's existence is not revealed)
    assert await call("GET", "", None) == 401
    assert await call("GET", "", outsider) == 404
    assert await call("GET", "/messages", outsider) == 404
    assert await call("POST", "/messages", outsider, {"content": "hi"}) == 404
    assert await call("POST", "/members", outsider, {"agent_id": outsider.agent_id}) == 404
    # guests read but do not post
    assert await call("GET", "", guest) == 200
    assert await call("GET", "/messages", guest) == 200
    assert await call("POST", "/messages", guest, {"content": "may I?"}) == 403
    # members post but do not manage
    assert await call("POST", "/messages", mem, {"content": "hello"}) == 201
    assert await call("POST", "/members", mem, {"agent_id": newbie.agent_id}) == 403
    assert await call("PATCH", f"/members/{guest.agent_id}", mem, {"role": "member"}) == 403
    assert await call("DELETE", f"/members/{guest.agent_id}", mem) == 403
    assert await call("DELETE", "", mem) == 403
    # admins invite, remove and change roles below their own, never at or above it
    assert (
        await call("POST", "/members", adm, {"agent_id": newbie.agent_id, "role": "admin"}) == 403
    )
    assert await call("POST", "/members", adm, {"agent_id": newbie.agent_id}) == 201
    assert await call("POST", "/members", adm, {"agent_id": newbie.agent_id}) == 409
    assert await call("PATCH", f"/members/{newbie.agent_id}", adm, {"role": "guest"}) == 200
    assert await call("PATCH", f"/members/{owner.agent_id}", adm, {"role": "guest"}) == 403
    assert await call("DELETE", f"/members/{owner.agent_id}", adm) == 403
    assert await call("DELETE", f"/members/{newbie.agent_id}", adm) == 200
    assert await call("DELETE", "", adm) == 403
    # anyone leaves by themselves; the owner closes instead
    assert await call("DELETE", f"/members/{guest.agent_id}", guest) == 200
    assert await call("GET", "", guest) == 404
    assert await call("DELETE", f"/members/{owner.agent_id}", owner) == 409
    assert await call("PATCH", f"/members/{mem.agent_id}", owner, {"role": "owner"}) == 422
    assert await call("PATCH", f"/members/{mem.agent_id}", owner, {"role": "admin"}) == 200
    # the owner closes; then nothing is posted, the history stays readable
    assert await call("DELETE", "", owner) == 200
    assert await call("POST", "/messages", owner, {"content": "too late"}) == 409
    assert await call("GET", "/messages", mem) == 200

    shown = (await api.get(base, headers=owner.headers)).json()
    assert shown["closed"] is True
    assert {m["agent_id"]: m["role"] for m in shown["members"]} == {
        owner.agent_id: "owner",
        adm.agent_id: "admin",
        mem.agent_id: "admin",
    }


async def test_a_public_chat_is_joined_by_anyone_as_member_or_guest(api, admin):
    owner, walker = await introduce(api, admin, "Owner"), await introduce(api, admin, "Walker")
    other = await introduce(api, admin, "Other")
    chat = await group(api, owner, other, join_rule="public")
    base = f"/v1/chats/{chat['chat_id']}"
    assert (await api.get(base, headers=walker.headers)).status_code == 200
    assert (await api.get(base + "/messages", headers=walker.headers)).status_code == 403
    as_admin = await api.post(
        base + "/members",
        json={"agent_id": walker.agent_id, "role": "admin"},
        headers=walker.headers,
    )
    assert as_admin.status_code == 403
    assert "as a member or a guest" in as_admin.json()["detail"]
    guest = await introduce(api, admin, "Guest")
    as_guest = await api.post(
        base + "/members", json={"agent_id": guest.agent_id, "role": "guest"}, headers=guest.headers
    )
    assert as_guest.status_code == 201, as_guest.text
    roles = {m["agent_id"]: m["role"] for m in as_guest.json()["members"]}
    assert roles[guest.agent_id] == "guest"
    assert (await api.get(base + "/messages", headers=guest.headers)).status_code == 200
    joined = await api.post(
        base + "/members", json={"agent_id": walker.agent_id}, headers=walker.headers
    )
    assert joined.status_code == 201
    assert (
        await api.post(base + "/messages", json={"content": "hi all"}, headers=walker.headers)
    ).status_code == 201


async def test_messages_get_increasing_seqs_and_page_in_order(api, admin):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = (
        await api.post(
            "/v1/chats",
            json={"type": "direct", "participants": [bob.agent_id]},
            headers=ada.headers,
        )
    ).json()
    base = f"/v1/chats/{chat['chat_id']}"
    posted = []
    for i in range(7):
        who = ada if i % 2 == 0 else bob
        response = await api.post(
            base + "/messages", json={"content": f"m{i}"}, headers=who.headers
        )
        assert response.status_code == 201
        posted.append(response.json())
    assert [p["seq"] for p in posted] == list(range(1, 8))
    assert len({p["message_id"] for p in posted}) == 7

    async def history(after=0, limit=3):
        return (
            await api.get(
                base + "/messages", params={"after_seq": after, "limit": limit}, headers=bob.headers
            )
        ).json()

    page = await eventually(lambda: history(0, 100), lambda p: len(p["items"]) == 7)
    first = page["items"][0]
    assert first["from"] == ada.agent_id and first["to"] == bob.agent_id
    assert first["is_private"] is True and first["content"] == "m0"
    contents, after = [], 0
    while True:
        page = await history(after, 3)
        contents += [m["content"] for m in page["items"]]
        if page["next_after_seq"] is None:
            break
        after = page["next_after_seq"]
    assert contents == [f"m{i}" for i in range(7)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"content": ""}, 422),
        ({"content": "   "}, 422),
        ({"content": "x" * (16 * 1024 + 1)}, 413),
        ({"content": "hi", "message_type": "system"}, 403),
        ({"content": "hi", "message_type": "html"}, 422),
        ({"content": "hi", "extra": 1}, 422),
    ],
)
async def test_bad_messages_are_refused_and_nothing_is_stored(api, admin, database, body, expected):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = await group(api, ada, bob)
    response = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages", json=body, headers=ada.headers
    )
    assert response.status_code == expected, response.text
    ok = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages", json={"content": "after"}, headers=ada.headers
    )
    assert ok.json()["seq"] == 1  # the refused message took no seq
    await eventually(
        lambda: database.db["messages"].count_documents({"chat_id": chat["chat_id"]}),
        lambda n: n == 1,
    )


async def test_the_platform_posts_system_messages(api, admin):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = await group(api, ada, bob)
    response = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages",
        json={"content": "maintenance at noon", "message_type": "system"},
        headers=admin,
    )
    assert response.status_code == 201
    page = await eventually(
        lambda: json_of(api.get(f"/v1/chats/{chat['chat_id']}/messages", headers=bob.headers)),
        lambda p: len(p["items"]) == 1,
    )
    assert page["items"][0]["from"] == "platform"


async def test_concurrent_posters_get_one_total_order_without_gaps(api, admin):
    posters = [await introduce(api, admin, f"P{i}") for i in range(4)]
    chat = await group(api, posters[0], *posters[1:])
    base = f"/v1/chats/{chat['chat_id']}/messages"

    async def post_all(agent: Agent) -> list[int]:
        seqs = []
        for i in range(25):
            while True:
                r = await api.post(
                    base, json={"content": f"{agent.agent_id} {i}"}, headers=agent.headers
                )
                if r.status_code != 429:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 10)
            assert r.status_code == 201, r.text
            seqs.append(r.json()["seq"])
        return seqs

    results = await asyncio.gather(*(post_all(p) for p in posters))
    every = sorted(s for seqs in results for s in seqs)
    assert every == list(range(1, 101))
    for seqs in results:
        assert seqs == sorted(seqs)  # each poster's own messages keep its order
    stored = await eventually(
        lambda: json_of(api.get(base, params={"limit": 500}, headers=posters[1].headers)),
        lambda p: len(p["items"]) == 100,
    )
    by_seq = {m["seq"]: m["content"] for m in stored["items"]}
    for agent, seqs in zip(posters, results, strict=True):
        assert [by_seq[s] for s in seqs] == [f"{agent.agent_id} {i}" for i in range(25)]


async def test_an_idempotency_key_makes_a_retried_post_count_once(api, admin, database):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = await group(api, ada, bob)
    base = f"/v1/chats/{chat['chat_id']}/messages"
    key = {"Idempotency-Key": "post-1"}
    first = await api.post(base, json={"content": "once"}, headers=ada.headers | key)
    again = await api.post(base, json={"content": "once"}, headers=ada.headers | key)
    assert first.json() == again.json()
    await api.post(base, json={"content": "next"}, headers=ada.headers)
    page = await eventually(
        lambda: json_of(api.get(base, headers=ada.headers)), lambda p: len(p["items"]) == 2
    )
    assert [m["content"] for m in page["items"]] == ["once", "next"]


async def test_retiring_members_leave_their_chats_and_the_owner_hands_over(api, admin):
    owner, adm, mem = [await introduce(api, admin, n) for n in ("Owner", "Adm", "Mem")]
    chat = await group(api, owner, adm, mem)
    base = f"/v1/chats/{chat['chat_id']}"
    await api.patch(f"{base}/members/{adm.agent_id}", json={"role": "admin"}, headers=owner.headers)
    assert (
        await api.delete(f"/v1/agents/{owner.agent_id}", headers=owner.headers)
    ).status_code == 200
    shown = await eventually(
        lambda: json_of(api.get(base, headers=adm.headers)),
        lambda c: owner.agent_id not in {m["agent_id"] for m in c["members"]},
    )
    assert {m["agent_id"]: m["role"] for m in shown["members"]} == {
        adm.agent_id: "owner",
        mem.agent_id: "member",
    }
    retired = (await api.get(f"/v1/agents/{owner.agent_id}", headers=admin)).json()
    assert retired["room_participation"] == []
