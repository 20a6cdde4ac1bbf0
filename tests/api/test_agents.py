"""The agent lifecycle through the API, against the real services."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import eventually
from tests.helpers import bearer


@pytest.fixture
def uid() -> str:
    """A suffix that keeps this test's agent ids (and so workflow ids) its own."""
    return uuid.uuid4().hex[:8]


async def introduce(api: httpx.AsyncClient, admin: dict, **body) -> dict:
    body.setdefault("name", "Ada")
    response = await api.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def test_introduction_answers_with_a_token_and_the_stored_manifest(api, admin, uid):
    created = await introduce(
        api,
        admin,
        agent_id=f"ada-{uid}",
        bio="counts things",
        available_resources=[{"kind": "skill", "name": "statistics"}],
    )
    assert created["agent_id"] == f"ada-{uid}"
    assert created["token"].count(".") == 2  # a JWT
    assert created["token_expires_at"] > created["manifest"]["created_at"]
    manifest = created["manifest"]
    assert manifest["status"] == "active"
    assert manifest["public_profile"] == {
        "name": "Ada",
        "bio": "counts things",
        "avatar_url": None,
        "homepage": None,
        "tags": [],
    }
    assert manifest["room_participation"] == []
    assert manifest["online_status"] is False

    read = await api.get(f"/v1/agents/ada-{uid}", headers=bearer(created["token"]))
    assert read.status_code == 200
    assert read.json()["available_resources"] == [
        {"kind": "skill", "name": "statistics", "description": None}
    ]


async def test_introducing_the_same_agent_id_twice_is_a_conflict(api, admin, uid, database):
    first = await introduce(api, admin, agent_id=f"twin-{uid}", name="First")
    again = await api.post(
        "/v1/agents", json={"agent_id": f"twin-{uid}", "name": "Second"}, headers=admin
    )
    assert again.status_code == 409
    stored = await database.db["agents"].find_one({"_id": f"twin-{uid}"})
    assert stored["public_profile"]["name"] == "First"
    assert (
        await api.get(f"/v1/agents/twin-{uid}", headers=bearer(first["token"]))
    ).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "status": "sleeping"}, "status"),
        ({"name": "ok", "status": "retired"}, "status"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        ({"name": "ok", "room_participation": ["c1"]}, "room_participation"),
        (
            {"name": "ok", "available_resources": [{"name": f"s{i}"} for i in range(101)]},
            "available_resources",
        ),
        ({"name": "ok", "agent_id": "Not An Id!"}, "agent_id"),
    ],
)
async def test_bad_introductions_are_422_naming_the_field_and_write_nothing(
    api, admin, database, body, field
):
    response = await api.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert await database.db["agents"].count_documents({}) == 0


async def test_patch_changes_own_fields_and_publishes_nothing_it_should_not(api, admin, uid):
    created = await introduce(api, admin, agent_id=f"bo-{uid}", name="Bo")
    token = bearer(created["token"])
    response = await api.patch(
        f"/v1/agents/bo-{uid}",
        json={
            "status": "busy",
            "current_activities": ["writing a report"],
            "available_resources": [{"kind": "tool", "name": "python"}],
            "public_profile": {"bio": "writes"},
        },
        headers=token,
    )
    assert response.status_code == 200, response.text
    manifest = response.json()
    assert manifest["status"] == "busy"
    assert manifest["current_activities"] == ["writing a report"]
    assert manifest["public_profile"]["name"] == "Bo"
    assert manifest["public_profile"]["bio"] == "writes"
    read = (await api.get(f"/v1/agents/bo-{uid}", headers=token)).json()
    assert read["status"] == "busy" and read["available_resources"][0]["name"] == "python"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room_participation": ["c1"]}, "room_participation"),
        ({"status": "offline"}, "status"),
        ({"status": "retired"}, "status"),
        ({"online_status": True}, "online_status"),
        ({"public_profile": {"name": ""}}, "name"),
        ({"available_resources": [{"name": "a"}, {"name": "a"}]}, "available_resources"),
    ],
)
async def test_patch_refuses_fields_the_caller_does_not_own(api, admin, uid, database, body, field):
    created = await introduce(api, admin, agent_id=f"cy-{uid}", name="Cy")
    before = await database.db["agents"].find_one({"_id": f"cy-{uid}"})
    response = await api.patch(f"/v1/agents/cy-{uid}", json=body, headers=bearer(created["token"]))
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert await database.db["agents"].find_one({"_id": f"cy-{uid}"}) == before


async def test_access_matrix(api, admin, uid):
    me = await introduce(api, admin, agent_id=f"me-{uid}", name="Me")
    other = await introduce(api, admin, agent_id=f"other-{uid}", name="Other")
    mine, theirs = bearer(me["token"]), bearer(other["token"])
    anonymous: dict[str, str] = {}
    wrong = bearer("agora_not-a-real-token")

    cases = [
        # (method, path, json, headers, expected)
        ("post", "/v1/agents", {"name": "New"}, anonymous, 401),
        ("post", "/v1/agents", {"name": "New"}, wrong, 401),
        ("post", "/v1/agents", {"name": "New"}, mine, 403),
        ("get", "/v1/agents", None, anonymous, 401),
        ("get", "/v1/agents", None, mine, 200),
        ("get", "/v1/agents", None, admin, 200),
        ("get", f"/v1/agents/other-{uid}", None, anonymous, 401),
        ("get", f"/v1/agents/other-{uid}", None, mine, 200),
        ("get", f"/v1/agents/nobody-{uid}", None, mine, 404),
        ("get", f"/v1/agents/other-{uid}/card", None, anonymous, 200),
        ("get", f"/v1/agents/nobody-{uid}/card", None, anonymous, 404),
        ("patch", f"/v1/agents/other-{uid}", {"status": "idle"}, anonymous, 401),
        ("patch", f"/v1/agents/other-{uid}", {"status": "idle"}, mine, 403),
        ("patch", f"/v1/agents/other-{uid}", {"status": "idle"}, theirs, 200),
        ("patch", f"/v1/agents/other-{uid}", {"status": "busy"}, admin, 200),
        ("patch", f"/v1/agents/nobody-{uid}", {"status": "busy"}, admin, 404),
        ("post", f"/v1/agents/other-{uid}/heartbeat", None, anonymous, 401),
        ("post", f"/v1/agents/other-{uid}/heartbeat", None, mine, 403),
        ("post", f"/v1/agents/other-{uid}/heartbeat", None, theirs, 202),
        ("post", f"/v1/agents/nobody-{uid}/heartbeat", None, admin, 404),
        ("delete", f"/v1/agents/other-{uid}", None, anonymous, 401),
        ("delete", f"/v1/agents/other-{uid}", None, mine, 403),
        ("delete", f"/v1/agents/nobody-{uid}", None, admin, 404),
        ("delete", f"/v1/agents/me-{uid}", None, admin, 200),
    ]
    for method, path, body, headers, expected in cases:
        kwargs = {"headers": headers} | ({"json": body} if body is not None else {})
        response = await api.request(method.upper(), path, **kwargs)
        assert response.status_code == expected, (method, path, headers, response.text)


async def test_discovery_filters_by_status_resource_and_name_with_cursor_pages(api, admin, uid):
    for i in range(5):
        await introduce(
            api,
            admin,
            agent_id=f"stat{i}-{uid}",
            name=f"Statistician {i}",
            available_resources=[{"name": "statistics"}],
        )
    await introduce(
        api,
        admin,
        agent_id=f"poet-{uid}",
        name="Poet",
        status="idle",
        available_resources=[{"name": "poetry"}],
    )

    seen, cursor = [], None
    while True:
        params = {"resource": "statistics", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/agents", params=params, headers=admin)).json()
        seen += [item["agent_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"stat{i}-{uid}" for i in range(5)]

    idle = (await api.get("/v1/agents", params={"status": "idle"}, headers=admin)).json()
    assert [a["agent_id"] for a in idle["items"]] == [f"poet-{uid}"]
    named = (await api.get("/v1/agents", params={"q": "tician 3"}, headers=admin)).json()
    assert [a["agent_id"] for a in named["items"]] == [f"stat3-{uid}"]
    regex = (await api.get("/v1/agents", params={"q": ".*"}, headers=admin)).json()
    assert regex["items"] == []
    bad = await api.get("/v1/agents", params={"status": "sleeping"}, headers=admin)
    assert bad.status_code == 422
    bad_cursor = await api.get("/v1/agents", params={"cursor": "%%%"}, headers=admin)
    assert bad_cursor.status_code == 422


async def test_agent_card_carries_skills_and_live_presence(api, admin, uid):
    created = await introduce(
        api,
        admin,
        agent_id=f"carded-{uid}",
        name="Carded",
        bio="a card",
        available_resources=[{"kind": "skill", "name": "translation", "description": "fr-en"}],
    )
    await api.post(f"/v1/agents/carded-{uid}/heartbeat", headers=bearer(created["token"]))
    card = await eventually(
        lambda: api.get(f"/v1/agents/carded-{uid}/card"),
        lambda r: r.json()["extensions"]["agora/presence"]["online"] is True,
    )
    body = card.json()
    assert body["name"] == "Carded" and body["description"] == "a card"
    assert body["skills"] == [
        {
            "id": "skill:translation",
            "name": "translation",
            "description": "fr-en",
            "tags": ["skill"],
        }
    ]
    assert body["extensions"]["agora/presence"]["status"] == "active"


async def test_retirement_revokes_the_token_and_keeps_the_manifest_readable(api, admin, uid):
    created = await introduce(api, admin, agent_id=f"old-{uid}", name="Old")
    token = bearer(created["token"])
    retired = await api.delete(f"/v1/agents/old-{uid}", headers=token)
    assert retired.status_code == 200
    assert retired.json()["status"] == "retired"
    assert (await api.get("/v1/agents", headers=token)).status_code == 401
    assert (
        await api.patch(f"/v1/agents/old-{uid}", json={"status": "idle"}, headers=token)
    ).status_code == 401
    read = await api.get(f"/v1/agents/old-{uid}", headers=admin)
    assert read.status_code == 200 and read.json()["status"] == "retired"
    again = await api.delete(f"/v1/agents/old-{uid}", headers=admin)
    assert again.status_code == 409
    assert (
        await api.post("/v1/agents", json={"agent_id": f"old-{uid}", "name": "New"}, headers=admin)
    ).status_code == 409


async def test_operators_introduce_change_and_retire_only_their_own_agents(api, admin, uid):
    made = await api.post(
        "/v1/operators", json={"operator_id": f"op-{uid}", "name": "Ops"}, headers=admin
    )
    assert made.status_code == 201
    op = bearer(made.json()["token"])
    dup = await api.post(
        "/v1/operators", json={"operator_id": f"op-{uid}", "name": "X"}, headers=admin
    )
    assert dup.status_code == 409
    assert (
        await api.post("/v1/operators", json={"operator_id": f"o2-{uid}", "name": "X"}, headers=op)
    ).status_code == 403

    mine = await api.post("/v1/agents", json={"agent_id": f"run-{uid}", "name": "Run"}, headers=op)
    assert mine.status_code == 201
    assert mine.json()["manifest"]["operator_id"] == f"op-{uid}"
    agent = bearer(mine.json()["token"])
    assert (
        await api.post(
            "/v1/operators", json={"operator_id": f"o3-{uid}", "name": "X"}, headers=agent
        )
    ).status_code == 403
    theirs = await introduce(api, admin, agent_id=f"adm-{uid}", name="Theirs")

    assert (
        await api.patch(f"/v1/agents/run-{uid}", json={"status": "busy"}, headers=op)
    ).status_code == 200
    assert (
        await api.patch(f"/v1/agents/adm-{uid}", json={"status": "busy"}, headers=op)
    ).status_code == 403
    assert (await api.delete(f"/v1/agents/adm-{uid}", headers=op)).status_code == 403
    assert (
        await api.patch(f"/v1/agents/nobody-{uid}", json={"status": "busy"}, headers=op)
    ).status_code == 404
    assert (await api.get(f"/v1/agents/adm-{uid}", headers=op)).status_code == 200
    assert (await api.delete(f"/v1/agents/run-{uid}", headers=op)).status_code == 200
    assert (await api.get("/v1/agents", headers=agent)).status_code == 401
    assert theirs["manifest"]["operator_id"] is None


async def test_profile_urls_are_stored_and_read_back(api, admin):
    """Found by schemathesis: a URL in the profile once could not be stored in MongoDB."""
    agent = await api.post(
        "/v1/agents",
        json={"agent_id": f"url-{uuid.uuid4().hex[:6]}", "name": "Url"},
        headers=admin,
    )
    me = agent.json()
    changed = await api.patch(
        f"/v1/agents/{me['agent_id']}",
        json={
            "public_profile": {
                "avatar_url": "https://example.org/a.png",
                "homepage": "https://example.org/",
            }
        },
        headers=bearer(me["token"]),
    )
    assert changed.status_code == 200, changed.text
    read = (await api.get(f"/v1/agents/{me['agent_id']}", headers=bearer(me["token"]))).json()
    assert read["public_profile"]["avatar_url"] == "https://example.org/a.png"
    assert read["public_profile"]["homepage"] == "https://example.org/"


async def test_a_batch_introduces_each_agent_with_its_own_token(api, admin, uid):
    ids = [f"{uid}-b{i}" for i in range(3)]
    entries = [{"agent_id": i, "name": f"Batch {n}"} for n, i in enumerate(ids)]
    entries.append({"name": "No id given"})
    response = await api.post("/v1/agents:batch", json={"agents": entries}, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()["agents"]
    assert [c["agent_id"] for c in created[:3]] == ids and created[3]["agent_id"]
    assert len({c["token"] for c in created}) == 4
    for c in created:
        mine = await api.get(f"/v1/agents/{c['agent_id']}", headers=bearer(c["token"]))
        assert mine.status_code == 200 and mine.json()["version"] >= 0


async def test_a_bad_batch_names_its_entry_and_introduces_nobody(api, admin, uid, database):
    taken = f"{uid}-taken"
    assert (
        await api.post("/v1/agents", json={"agent_id": taken, "name": "T"}, headers=admin)
    ).status_code == 201
    fresh = [{"agent_id": f"{uid}-f{i}", "name": f"F{i}"} for i in range(3)]
    cases = [
        (
            {"agents": [*fresh, {"agent_id": f"{uid}-f0", "name": "Twin"}]},
            422,
            ["body", "agents", "3", "agent_id"],
        ),
        (
            {"agents": [fresh[0], {"agent_id": f"{uid}-x", "bio": "no name"}]},
            422,
            ["body", "agents", 1, "name"],
        ),
        (
            {"agents": [fresh[0], {"name": "Odd", "brain": {"model": "nowhere:gpt-0"}}]},
            422,
            ["body", "agents", 1, "brain", "model"],
        ),
        ({"agents": [{"name": f"N{i}"} for i in range(101)]}, 422, ["body", "agents"]),
        ({"agents": []}, 422, ["body", "agents"]),
    ]
    for body, code, loc in cases:
        refused = await api.post("/v1/agents:batch", json=body, headers=admin)
        assert refused.status_code == code, refused.text
        assert refused.json()["detail"][0]["loc"] == loc, refused.text
    conflict = await api.post(
        "/v1/agents:batch",
        json={"agents": [fresh[0], {"agent_id": taken, "name": "Again"}]},
        headers=admin,
    )
    assert conflict.status_code == 409 and conflict.json()["detail"].startswith("agents.1:")
    ids = [f["agent_id"] for f in fresh] + [f"{uid}-x"]
    assert await database.db["agents"].count_documents({"_id": {"$in": ids}}) == 0
    stranger = await api.post("/v1/agents:batch", json={"agents": fresh}, headers=bearer("x.y.z"))
    assert stranger.status_code == 401
