"""The outside probe's findings, one class at a time, against the real stack: privacy of
tasks and rooms, limits keyed on who calls, bounded input, clear errors, retirement with
open work, idempotency keys that name one body, and the seed's own shapes."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import httpx
import pytest
import websockets

from cli.stack import free_port
from models.chats import direct_chat_id
from persistence import AuditRepository
from tests.conftest import eventually, settings_env
from tests.helpers import (
    Agent,
    app_client,
    balance,
    bearer,
    group,
    in_seconds,
    introduce,
    json_of,
    leaked_credentials,
)


async def _mint(api, admin, agent, amount: int) -> None:
    response = await api.post(
        f"/v1/accounts/{agent.agent_id}/mint", json={"amount": amount}, headers=admin
    )
    assert response.status_code == 201, response.text


async def _task(api, poster, **body) -> dict:
    body = {"title": "sum the column", "reward": 50, "deadline": in_seconds(3600)} | body
    response = await api.post("/v1/tasks", json=body, headers=poster.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _bid(api, agent, task_id: str, price: int, note: str = "") -> dict:
    response = await api.post(
        f"/v1/tasks/{task_id}/bids", json={"price": price, "note": note}, headers=agent.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


# ---- 1. no credential in a URL or a log ---------------------------------------------------


async def _closed_with(url: str, headers: dict | None = None) -> int:
    async with websockets.connect(url, additional_headers=headers or {}, open_timeout=10) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code


async def test_streams_take_no_token_in_the_url_and_the_api_log_keeps_none(
    settings, worker, admin, tmp_path
):
    port = free_port()
    log = tmp_path / "api.log"
    env = settings_env(settings) | {"AGORA_API_PORT": str(port), "AGORA_API_HOST": "127.0.0.1"}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def ready():
                try:
                    return (await http.get("/readyz")).status_code
                except httpx.TransportError:
                    return 0

            await eventually(ready, lambda code: code == 200, timeout=60)
            ada = await introduce(http, admin, "Ada")
            url = base.replace("http", "ws", 1) + f"/v1/agents/{ada.agent_id}/stream"
            admin_token = admin["Authorization"].split()[1]
            assert await _closed_with(f"{url}?token={ada.token}") == 4401
            assert await _closed_with(f"{url}?token={admin_token}") == 4401
            issued = await http.post(
                f"/v1/agents/{ada.agent_id}/stream-ticket", headers=ada.headers
            )
            assert issued.status_code == 201, issued.text
            ticket = issued.json()["ticket"]
            bob = await introduce(http, admin, "Bob")
            async with websockets.connect(f"{url}?ticket={ticket}") as stream:
                await http.post(
                    "/v1/chats",
                    json={"type": "direct", "participants": [ada.agent_id]},
                    headers=bob.headers,
                )
                assert json.loads(await asyncio.wait_for(stream.recv(), 30))["event_id"]
            assert await _closed_with(f"{url}?ticket={ticket}") == 4401  # single use
            stale = await http.post(f"/v1/agents/{ada.agent_id}/stream-ticket", headers=ada.headers)
            other_url = url.replace(ada.agent_id, bob.agent_id)
            assert await _closed_with(f"{other_url}?ticket={stale.json()['ticket']}") == 4401
            assert (await http.get("/v1/chats", params={"token": ada.token})).status_code == 401
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
    text = log.read_text()
    assert "WebSocket" in text and "[redacted]" in text  # uvicorn's lines went through us
    secrets = {ada.token, admin_token, ticket, stale.json()["ticket"]}
    assert leaked_credentials([log], secrets) == []


# ---- 2. the rate limit counts the caller, not the string it sends --------------------


async def test_made_up_tokens_and_recased_schemes_share_one_limit(settings, worker, admin):
    async with app_client(settings) as setup:
        me = await introduce(setup, admin, "Casing")
    settings.rate_per_token_per_second = 0.1
    settings.rate_burst_per_token = 5
    async with app_client(settings) as api:
        junk = [
            (await api.get("/v1/chats", headers=bearer(f"junk{n}"))).status_code for n in range(12)
        ]
        assert junk[:5] == [401] * 5 and set(junk[5:]) == {429}
        schemes = ("Bearer", "bearer", "BEARER", "bEaReR", "BeArEr", "beaRER", "Bearer")
        codes = [
            (await api.get("/v1/chats", headers={"Authorization": f"{s} {me.token}"})).status_code
            for s in schemes
        ]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}


async def test_a_flood_of_bad_tokens_writes_a_bounded_audit_that_counts_them_all(
    settings, worker, database
):
    settings.audit_denial_window_seconds = 1.0
    async with app_client(settings) as api:
        for n in range(30):
            assert (await api.get("/v1/chats", headers=bearer(f"junk{n}"))).status_code == 401
        records, _ = await AuditRepository(database).page(actor="anonymous", limit=500)
        assert len(records) == 1 and records[0].count == 1 and records[0].client

        probes = 0

        async def summarised():
            nonlocal probes
            probes += 1
            await api.get("/v1/chats", headers=bearer("one more"))
            records, _ = await AuditRepository(database).page(actor="anonymous", limit=500)
            return records

        records = await eventually(summarised, lambda r: any(x.count > 1 for x in r), timeout=10)
    [summary] = [r for r in records if r.count > 1]
    assert summary.count >= 29 and summary.status == 401 and "more like" in summary.reason
    # three records for 30 + probes refusals: the first window's first and its summary (the
    # 29 others and the probes that fell in it), and the next window's first; the probe
    # that found the summary, or the one before it, opened that window
    assert len(records) == 3
    assert summary.count in (27 + probes, 28 + probes)


# ---- 3. a task's result and its bids are the parties' ----------------------------------


async def test_results_and_bids_are_shown_only_to_those_they_belong_to(api, admin):
    poster, winner, loser, stranger = [
        await introduce(api, admin, n) for n in ("Poster", "Winner", "Loser", "Stranger")
    ]
    await _mint(api, admin, poster, 100)
    task = await _task(api, poster)
    task_id = task["task_id"]
    mine = await _bid(api, winner, task_id, 40, "cheap and quick")
    assert [b["agent_id"] for b in mine["bids"]] == [winner.agent_id]
    loser_view = await _bid(api, loser, task_id, 45, "my secret method")
    assert [b["agent_id"] for b in loser_view["bids"]] == [loser.agent_id]
    assert loser_view["bid_count"] == 2
    assigned = await api.post(
        f"/v1/tasks/{task_id}/assign", json={"agent_id": winner.agent_id}, headers=poster.headers
    )
    assert assigned.status_code == 200, assigned.text
    submitted = await api.post(
        f"/v1/tasks/{task_id}/submit", json={"result": "the sum is 42"}, headers=winner.headers
    )
    assert submitted.status_code == 200 and submitted.json()["result"] == "the sum is 42"

    async def seen_by(agent):
        return await json_of(api.get(f"/v1/tasks/{task_id}", headers=agent.headers))

    await eventually(lambda: seen_by(poster), lambda t: t["status"] == "submitted")
    for_poster = await seen_by(poster)
    assert for_poster["result"] == "the sum is 42" and len(for_poster["bids"]) == 2
    assert (await seen_by(winner))["result"] == "the sum is 42"
    for who in (stranger, loser):
        seen = await seen_by(who)
        assert seen["result"] is None and seen["bid_count"] == 2
        assert all(b["agent_id"] == who.agent_id for b in seen["bids"])
    listed = await json_of(api.get("/v1/tasks", headers=stranger.headers))
    [row] = [t for t in listed["items"] if t["task_id"] == task_id]
    assert row["result"] is None and row["bids"] == []
    assert "my secret method" not in json.dumps(listed)


# ---- 4. who talks to whom is not on the manifest -------------------------------------


async def test_a_manifest_shows_others_only_its_public_rooms(api, admin):
    ada, bob, carol = [await introduce(api, admin, n) for n in ("Ada", "Bob", "Carol")]
    direct = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [bob.agent_id]}, headers=ada.headers
    )
    dm = direct.json()["chat_id"]
    private = (await group(api, ada, bob))["chat_id"]
    public = (await group(api, ada, bob, join_rule="public"))["chat_id"]

    async def manifest(of, by):
        return await json_of(api.get(f"/v1/agents/{of.agent_id}", headers=by.headers))

    own = await eventually(lambda: manifest(ada, ada), lambda m: len(m["room_participation"]) == 3)
    assert set(own["room_participation"]) == {dm, private, public}
    seen = await manifest(ada, carol)
    assert seen["room_participation"] == [public]
    assert not any(dm in a or private in a for a in seen["current_activities"])
    listed = await json_of(api.get("/v1/agents", params={"q": "Ada"}, headers=carol.headers))
    text = json.dumps(listed)
    assert dm not in text and private not in text
    assert set((await manifest(ada, bob))["room_participation"]) == {public}
    assert set(
        (await json_of(api.get(f"/v1/agents/{ada.agent_id}", headers=admin)))["room_participation"]
    ) == {dm, private, public}


# ---- 5. client times are bounded ------------------------------------------------------


async def test_far_future_and_zoneless_times_are_refused_or_read_as_utc(api, admin):
    poster = await introduce(api, admin, "Far")
    await _mint(api, admin, poster, 100)
    body = {"title": "later", "reward": 10}
    for deadline in ("9999-12-30T00:00:00Z", in_seconds(400 * 86400)):
        refused = await api.post(
            "/v1/tasks", json=body | {"deadline": deadline}, headers=poster.headers
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == "deadline"
    tuned = await api.patch(
        f"/v1/agents/{poster.agent_id}/attention",
        json={"dialogues": {"somewhere": {"deadline": "9999-12-31T00:00:00"}}},
        headers=poster.headers,
    )
    assert tuned.status_code == 422 and tuned.json()["detail"][0]["loc"][-1] == "deadline"
    chat = await group(api, poster, await introduce(api, admin, "Near"))
    naive = (in_seconds(3600)).replace("+00:00", "")
    tuned = await api.patch(
        f"/v1/agents/{poster.agent_id}/attention",
        json={"dialogues": {chat["chat_id"]: {"deadline": naive}}},
        headers=poster.headers,
    )
    assert tuned.status_code == 200, tuned.text
    # the agent's workflow kept working with the zoneless time: it still answers
    assert (
        await api.get(f"/v1/agents/{poster.agent_id}/attention", headers=poster.headers)
    ).status_code == 200


# ---- 6. retirement with open work ----------------------------------------------------


async def test_retiring_with_open_tasks_is_refused_naming_them_until_they_are_done(api, admin):
    poster, worker_agent, bidder = [
        await introduce(api, admin, n) for n in ("Boss", "Doer", "Hopeful")
    ]
    await _mint(api, admin, poster, 100)
    task = (await _task(api, poster))["task_id"]
    await _bid(api, worker_agent, task, 30)
    await _bid(api, bidder, task, 35)
    for agent, part in ((poster, "poster"), (bidder, "bidder")):
        refused = await api.delete(f"/v1/agents/{agent.agent_id}", headers=agent.headers)
        assert refused.status_code == 409 and f"{task} ({part}, open)" in refused.json()["detail"]
    await api.post(
        f"/v1/tasks/{task}/assign", json={"agent_id": worker_agent.agent_id}, headers=poster.headers
    )
    await api.post(
        f"/v1/tasks/{task}/submit", json={"result": "done"}, headers=worker_agent.headers
    )

    async def retire_doer():
        return await api.delete(f"/v1/agents/{worker_agent.agent_id}", headers=worker_agent.headers)

    refused = await eventually(retire_doer, lambda r: "submitted" in r.text)
    assert (
        refused.status_code == 409 and f"{task} (assignee, submitted)" in refused.json()["detail"]
    )
    assert (await retire_doer()).status_code == 409
    # the task is not wedged: the poster accepts and the assignee is paid
    accepted = await api.post(f"/v1/tasks/{task}/accept", headers=poster.headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "settled"
    assert await eventually(lambda: balance(api, worker_agent), lambda b: b == 30) == 30

    async def task_closed(agent):
        return await api.delete(f"/v1/agents/{agent.agent_id}", headers=agent.headers)

    retired = await eventually(lambda: task_closed(worker_agent), lambda r: r.status_code == 200)
    assert retired.json()["status"] == "retired"
    # a bidder withdraws its bid, then retires; the retired account keeps its balance
    second = (await _task(api, poster, reward=20))["task_id"]
    await _bid(api, bidder, second, 10)
    withdrawn = await api.delete(
        f"/v1/tasks/{second}/bids/{bidder.agent_id}", headers=bidder.headers
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["bids"] == []
    cancelled = await api.post(f"/v1/tasks/{second}/cancel", headers=poster.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await eventually(lambda: balance(api, poster), lambda b: b == 70)
    assert (await eventually(lambda: task_closed(bidder), lambda r: r.status_code == 200)).json()
    assert (await balance(api, worker_agent, admin)) == 30
    paid = await api.post(
        f"/v1/accounts/{poster.agent_id}/transfers",
        json={"recipient": worker_agent.agent_id, "amount": 1},
        headers=poster.headers,
    )
    assert paid.status_code == 422 and "retired" in paid.text


# ---- 7. odd but well-formed input gets a 4xx, never a 500 ----------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"content": "\\ud800"}',
        b'{"content": "ok", "message_type": "\\udfff"}',
        b'{"content": NaN}',
        b'{"content": Infinity}',
    ],
)
async def test_surrogates_and_non_finite_numbers_get_a_422_naming_the_field(api, admin, raw):
    a, b = await introduce(api, admin, "Odd"), await introduce(api, admin, "Even")
    chat = await group(api, a, b)
    response = await api.post(
        f"/v1/chats/{chat['chat_id']}/messages",
        content=raw,
        headers=a.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert set(error) == {"loc", "msg", "type"}
    assert error["loc"][0] == "body"


async def test_integers_past_the_stores_range_are_refused_in_queries_and_bodies(api, admin):
    a, b = await introduce(api, admin, "Big"), await introduce(api, admin, "Number")
    chat = (await group(api, a, b))["chat_id"]
    for value in (2**63, 2**53):
        page = await api.get(
            f"/v1/chats/{chat}/messages", params={"after_seq": value}, headers=a.headers
        )
        assert page.status_code == 422 and page.json()["detail"][0]["loc"] == ["query", "after_seq"]
        read = await api.post(
            f"/v1/chats/{chat}/read", json={"up_to_seq": value}, headers=b.headers
        )
        assert read.status_code == 422 and read.json()["detail"][0]["loc"] == ["body", "up_to_seq"]


async def test_an_unexpected_error_is_a_json_500_that_closes_and_is_audited(
    settings, worker, database, admin
):
    from api.app import create_app

    app = create_app(settings)

    async def broken() -> dict:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken", broken, methods=["POST"])
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://agora.test") as api:
            response = await api.post("/v1/broken", headers=admin)
    assert response.status_code == 500
    assert response.headers["connection"] == "close"
    assert response.json()["detail"].startswith("internal error")
    records, _ = await AuditRepository(database).page(outcome="failed")
    assert [r.action for r in records] == ["POST /v1/broken"]


# ---- 9. an Idempotency-Key names one body ----------------------------------------------


async def test_a_key_reused_with_another_body_is_refused_and_changes_nothing(api, admin, database):
    a, b = await introduce(api, admin, "Payer"), await introduce(api, admin, "Payee")
    chat = (await group(api, a, b))["chat_id"]
    url = f"/v1/chats/{chat}/messages"
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = await api.post(url, json={"content": "pay 10"}, headers=a.headers | key)
    again = await api.post(url, json={"content": "pay 10"}, headers=a.headers | key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = await api.post(url, json={"content": "pay 1000"}, headers=a.headers | key)
    assert other.status_code == 422, other.text
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

    await _mint(api, admin, a, 100)
    pay = f"/v1/accounts/{a.agent_id}/transfers"
    body = {"recipient": b.agent_id, "amount": 10}
    assert (await api.post(pay, json=body, headers=a.headers | key)).status_code == 201
    for changed in ({"amount": 11}, {"memo": "other"}):
        refused = await api.post(pay, json=body | changed, headers=a.headers | key)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await balance(api, a) == 90 and await balance(api, b) == 10
    mint = f"/v1/accounts/{b.agent_id}/mint"
    assert (await api.post(mint, json={"amount": 5}, headers=admin | key)).status_code == 201
    refused = await api.post(mint, json={"amount": 6}, headers=admin | key)
    assert refused.status_code == 422
    assert await balance(api, b) == 15
    page = await eventually(
        lambda: json_of(api.get(url, headers=a.headers)), lambda p: len(p["items"]) >= 1
    )
    assert [m["content"] for m in page["items"]] == ["pay 10"]
    assert (await json_of(api.get(f"/v1/chats/{chat}", headers=a.headers)))["last_seq"] == 1


# ---- 10. strict types --------------------------------------------------------------------


async def test_money_is_a_strict_integer_json_is_json_and_names_are_plain(api, admin):
    a, b = await introduce(api, admin, "Strict"), await introduce(api, admin, "Types")
    await _mint(api, admin, a, 100)
    for amount in (True, "10", 10.5):
        refused = await api.post(
            f"/v1/accounts/{a.agent_id}/transfers",
            json={"recipient": b.agent_id, "amount": amount},
            headers=a.headers,
        )
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "amount"
    assert await balance(api, a) == 100
    chat = (await group(api, a, b))["chat_id"]
    url = f"/v1/chats/{chat}/messages"
    bad = await api.post(
        url, json={"content": "{not json", "message_type": "json"}, headers=a.headers
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "content"]
    good = await api.post(
        url, json={"content": '{"x": 1}', "message_type": "json"}, headers=a.headers
    )
    assert good.status_code == 201
    for name in ("nul\x00name", "evil\u202etxt.exe", "new\nline"):
        refused = await api.post("/v1/agents", json={"name": name}, headers=admin)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "name"
        topic = await api.post(
            "/v1/chats",
            json={"type": "group", "participants": [b.agent_id], "topic": name},
            headers=a.headers,
        )
        assert topic.status_code == 422


# ---- 11. the contract's rough edges -------------------------------------------------------


async def test_closed_chats_answer_409_and_a_direct_chat_closes_and_opens_again(api, admin):
    a, b = await introduce(api, admin, "Close"), await introduce(api, admin, "Open")
    opened = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [b.agent_id]}, headers=a.headers
    )
    chat = opened.json()["chat_id"]
    assert chat == direct_chat_id(a.agent_id, b.agent_id)
    closed = await api.delete(f"/v1/chats/{chat}", headers=b.headers)
    assert closed.status_code == 200, closed.text

    async def closed_for(agent):
        return await json_of(api.get(f"/v1/chats/{chat}", headers=agent.headers))

    await eventually(lambda: closed_for(a), lambda c: c["closed"])
    for response in (
        await api.delete(f"/v1/chats/{chat}", headers=a.headers),
        await api.post(f"/v1/chats/{chat}/read", json={"up_to_seq": 0}, headers=a.headers),
        await api.post(f"/v1/chats/{chat}/messages", json={"content": "hi"}, headers=a.headers),
    ):
        assert response.status_code == 409 and response.json()["detail"] == f"chat {chat} is closed"
    again = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [a.agent_id]}, headers=b.headers
    )
    assert again.status_code == 201 and again.json()["chat_id"] == f"{chat}-1"
    same = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [b.agent_id]}, headers=a.headers
    )
    assert same.status_code == 200 and same.json()["chat_id"] == f"{chat}-1"


async def test_refusals_read_as_english(api, admin):
    owner, adm = await introduce(api, admin, "Own"), await introduce(api, admin, "Adm")
    chat = (await group(api, owner, adm))["chat_id"]
    made = await api.patch(
        f"/v1/chats/{chat}/members/{adm.agent_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert made.status_code == 200, made.text
    refused = await api.delete(f"/v1/chats/{chat}/members/{owner.agent_id}", headers=adm.headers)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "an admin cannot remove an owner"


async def test_chats_page_with_a_cursor(api, admin):
    me, other = await introduce(api, admin, "Pager"), await introduce(api, admin, "Paged")
    made = [(await group(api, me, other, topic=f"t{i}"))["chat_id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await json_of(api.get("/v1/chats", params=params, headers=me.headers))
        seen += [c["chat_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    bad = await api.get("/v1/chats", params={"cursor": "nonsense"}, headers=me.headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_a_mention_by_name_is_read_as_one(api, admin):
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = (await group(api, ada, bob))["chat_id"]
    url = f"/v1/chats/{chat}/messages"
    posted = await api.post(url, json={"content": "@bob, look at this"}, headers=ada.headers)
    assert posted.status_code == 201

    page = await eventually(
        lambda: json_of(api.get(url, headers=ada.headers)),
        lambda p: p["items"] and p["items"][0]["langchain_context"],
    )
    assert page["items"][0]["langchain_context"]["mentions"] == [bob.agent_id]


# ---- 12-14. the seed's shapes ---------------------------------------------------------------


async def test_the_seeds_shapes_are_accepted(api, admin, settings):
    seeded = await api.post(
        "/v1/agents",
        json={"name": "Seed", "available_resources": ["data_analysis", "translation"]},
        headers=admin,
    )
    assert seeded.status_code == 201, seeded.text
    seed = seeded.json()
    assert seed["manifest"]["available_resources"] == [
        {"kind": "skill", "name": "data_analysis", "description": None},
        {"kind": "skill", "name": "translation", "description": None},
    ]
    me = bearer(seed["token"])
    patched = await api.patch(
        f"/v1/agents/{seed['agent_id']}", json={"available_resources": ["statistics"]}, headers=me
    )
    assert (
        patched.status_code == 200
        and patched.json()["available_resources"][0]["name"] == "statistics"
    )
    other = await introduce(api, admin, "Other")
    seed_agent = Agent(seed["agent_id"], seed["token"])
    chat = (await group(api, other, seed_agent, speaker_policy="fifo"))["chat_id"]
    asked = await api.post(f"/v1/chats/{chat}/floor", headers=me)
    assert asked.status_code == 200, asked.text
    floor = asked.json()
    waiting = [q["agent_id"] for q in floor["queue"]]
    assert seed["agent_id"] in [floor["current_speaker"], *waiting]
    assert all(q["priority"] == 0 and q["reason"] is None for q in floor["queue"])

    await _mint(api, admin, other, 100)
    first = await api.post(
        "/v1/tasks",
        json={
            "title": "analyse",
            "reward": 10,
            "deadline": in_seconds(3600),
            "skills_required": ["data_analysis"],
        },
        headers=other.headers,
    )
    assert first.status_code == 201, first.text
    offered = await introduce(api, admin, "Knitter", available_resources=["knitting"])
    named = await api.post(
        "/v1/tasks",
        json={
            "title": "a scarf",
            "reward": 10,
            "deadline": in_seconds(3600),
            "skills_required": ["knitting"],
        },
        headers=other.headers,
    )
    assert named.status_code == 201, named.text
    skills = {s["name"]: s for s in await json_of(api.get("/v1/skills", headers=admin))}
    assert skills["knitting"]["parent"] is None and "statistics" in skills
    candidates = await json_of(
        api.get(f"/v1/tasks/{named.json()['task_id']}/candidates", headers=other.headers)
    )
    assert [c["agent_id"] for c in candidates] == [offered.agent_id]
    nobody = await api.post(
        "/v1/tasks",
        json={
            "title": "x",
            "reward": 10,
            "deadline": in_seconds(3600),
            "skills_required": ["juggling"],
        },
        headers=other.headers,
    )
    assert nobody.status_code == 422 and "juggling" in nobody.text


async def test_a_closed_catalogue_takes_only_what_an_admin_put_in(settings, worker, admin):
    settings.skills_catalogue = "closed"
    async with app_client(settings) as api:
        poster = await introduce(api, admin, "Closed")
        await introduce(api, admin, "Weaver", available_resources=["weaving"])
        await _mint(api, admin, poster, 10)
        refused = await api.post(
            "/v1/tasks",
            json={
                "title": "cloth",
                "reward": 5,
                "deadline": in_seconds(3600),
                "skills_required": ["weaving"],
            },
            headers=poster.headers,
        )
        assert refused.status_code == 422 and "weaving" in refused.text
