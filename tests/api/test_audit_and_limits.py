"""The audit log, the request limits, and message content sealed at rest."""

from __future__ import annotations

import base64
import os
import uuid

import bson
from pydantic import SecretStr

from persistence import MessageRepository, open_database
from tests.conftest import eventually
from tests.helpers import app_client, introduce, json_of


async def _direct(api, a, b) -> str:
    response = await api.post(
        "/v1/chats", json={"type": "direct", "participants": [b.agent_id]}, headers=a.headers
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["chat_id"]


async def _audit(api, admin, **filters) -> list[dict]:
    response = await api.get("/v1/audit", params=filters, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# ---- audit -------------------------------------------------------------------------------


async def test_mutations_and_refusals_are_audited_with_actor_target_and_correlation(api, admin):
    a = await introduce(api, admin, "Aud")
    b = await introduce(api, admin, "Bud")
    stranger = await introduce(api, admin, "Peek")
    chat = await _direct(api, a, b)
    cid = f"corr-{uuid.uuid4().hex[:8]}"
    posted = await api.post(
        f"/v1/chats/{chat}/messages",
        json={"content": "hello"},
        headers=a.headers | {"X-Correlation-ID": cid},
    )
    assert posted.status_code == 201
    hidden = await api.get(f"/v1/chats/{chat}/messages", headers=stranger.headers)
    assert hidden.status_code == 404
    anonymous = await api.delete(f"/v1/agents/{a.agent_id}")
    assert anonymous.status_code == 401

    [post] = await _audit(
        api, admin, actor=f"agent:{a.agent_id}", action="POST /v1/chats/{chat_id}/messages"
    )
    assert post["target"] == f"chat:{chat}"
    assert post["outcome"] == "allowed" and post["status"] == 201
    assert post["correlation_id"] == cid

    [peek] = await _audit(api, admin, actor=f"agent:{stranger.agent_id}", outcome="denied")
    assert peek["action"] == "GET /v1/chats/{chat_id}/messages" and peek["status"] == 404
    assert peek["target"] == f"chat:{chat}" and peek["reason"] == "chat not found"

    nobody = await _audit(api, admin, actor="anonymous", target=f"agent:{a.agent_id}")
    assert [r["action"] for r in nobody] == ["DELETE /v1/agents/{agent_id}"]
    assert nobody[0]["outcome"] == "denied" and nobody[0]["reason"] == "missing bearer token"

    # reads that were allowed are not written; the introduction (a mutation by the admin) is
    reads = await _audit(api, admin, action="GET /v1/chats/{chat_id}/messages", outcome="allowed")
    assert reads == []
    intro = await _audit(api, admin, actor="admin", action="POST /v1/agents")
    assert len(intro) == 3 and all(r["outcome"] == "allowed" for r in intro)


async def test_the_audit_log_is_for_admins_pages_newest_first_and_checks_its_filters(api, admin):
    me = await introduce(api, admin, "Pager")
    assert (await api.get("/v1/audit", headers=me.headers)).status_code == 403
    for _ in range(4):
        await api.patch(f"/v1/agents/{me.agent_id}", json={"status": "busy"}, headers=me.headers)
    mine = {"actor": f"agent:{me.agent_id}", "action": "PATCH /v1/agents/{agent_id}", "limit": 3}
    first = (await api.get("/v1/audit", params=mine, headers=admin)).json()
    rest = (
        await api.get("/v1/audit", params=mine | {"before": first["next_before"]}, headers=admin)
    ).json()
    ids = [r["audit_id"] for r in first["items"] + rest["items"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True) and rest["next_before"] is None
    # the refused audit read is itself audited
    assert len(await _audit(api, admin, actor=f"agent:{me.agent_id}", outcome="denied")) == 1
    for bad in (
        {"outcome": "maybe"},
        {"limit": 0},
        {"before": "x"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ):
        response = await api.get("/v1/audit", params=bad, headers=admin)
        assert response.status_code == 422, (bad, response.text)


async def test_a_retried_audit_write_is_recorded_once_and_keeps_the_first(database):
    from datetime import UTC, datetime

    from models.audit import AuditRecord
    from persistence.audit import AuditRepository

    log = AuditRepository(database)
    record = AuditRecord(
        audit_id=f"a-{uuid.uuid4().hex}",
        at=datetime.now(UTC),
        actor="admin",
        action="POST /v1/agents",
        outcome="allowed",
        status=201,
    )
    await log.add(record)
    await log.add(record.model_copy(update={"status": 500, "outcome": "failed"}))
    items, _ = await log.page(actor="admin")
    assert [(r.audit_id, r.status) for r in items] == [(record.audit_id, 201)]


# ---- limits ------------------------------------------------------------------------------


async def test_a_body_over_the_bound_gets_413_before_anything_runs(
    settings, worker, admin, database
):
    settings.max_body_bytes = 2048
    async with app_client(settings) as api:
        a = await introduce(api, admin, "Big")
        b = await introduce(api, admin, "Small")
        chat = await _direct(api, a, b)
        big = await api.post(
            f"/v1/chats/{chat}/messages", json={"content": "x" * 4000}, headers=a.headers
        )
        assert big.status_code == 413 and "2048" in big.json()["detail"]

        async def chunked():
            yield b'{"content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        streamed = await api.post(
            f"/v1/chats/{chat}/messages",
            content=chunked(),
            headers=a.headers | {"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert await database.db["messages"].count_documents({"chat_id": chat}) == 0
        limited = await _audit(api, admin, actor="anonymous", outcome="limited")
        limited += await _audit(api, admin, actor=f"agent:{a.agent_id}", outcome="limited")
        assert len(limited) == 2


async def test_a_message_over_its_bound_gets_413(settings, worker, admin, database):
    settings.max_message_bytes = 100
    async with app_client(settings) as api:
        a = await introduce(api, admin, "Long")
        b = await introduce(api, admin, "Short")
        chat = await _direct(api, a, b)
        response = await api.post(
            f"/v1/chats/{chat}/messages", json={"content": "é" * 60}, headers=a.headers
        )
        assert response.status_code == 413 and "100 bytes" in response.json()["detail"]
        fits = await api.post(
            f"/v1/chats/{chat}/messages", json={"content": "é" * 50}, headers=a.headers
        )
        assert fits.status_code == 201
        assert await database.db["messages"].count_documents({"chat_id": chat}) <= 1


async def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_go_on(
    settings, worker, admin
):
    async with app_client(settings) as setup:
        a = await introduce(setup, admin, "Fast")
        b = await introduce(setup, admin, "Calm")
    settings.rate_per_token_per_second = 0.5
    settings.rate_burst_per_token = 3
    async with app_client(settings) as api:
        codes = [(await api.get("/v1/chats", headers=a.headers)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        refused = await api.get("/v1/chats", headers=a.headers)
        assert int(refused.headers["retry-after"]) >= 1
        assert (await api.get("/v1/chats", headers=b.headers)).status_code == 200
        assert (await api.get("/healthz", headers=a.headers)).status_code == 200


async def test_an_agent_past_its_message_rate_gets_429_and_the_chat_never_sees_it(
    settings, worker, admin, database, temporal_client
):
    settings.messages_per_agent_per_minute = 6
    settings.message_burst_per_agent = 2
    async with app_client(settings) as api:
        a = await introduce(api, admin, "Chatty")
        b = await introduce(api, admin, "Quiet")
        chat = await _direct(api, a, b)
        url = f"/v1/chats/{chat}/messages"
        codes = [
            (await api.post(url, json={"content": f"m{i}"}, headers=a.headers)).status_code
            for i in range(4)
        ]
        assert codes == [201, 201, 429, 429]
        refused = await api.post(url, json={"content": "again"}, headers=a.headers)
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        # b has its own allowance in the same chat
        assert (await api.post(url, json={"content": "hi"}, headers=b.headers)).status_code == 201
        await eventually(
            lambda: database.db["messages"].count_documents({"chat_id": chat}), lambda n: n >= 3
        )
        page = await json_of(api.get(f"{url}", headers=b.headers))
        assert [m["content"] for m in page["items"]] == ["m0", "m1", "hi"]


# ---- at rest -----------------------------------------------------------------------------


async def test_private_content_is_ciphertext_in_mongodb_and_plaintext_to_members(
    api, admin, database
):
    a = await introduce(api, admin, "Sealed")
    b = await introduce(api, admin, "Reader")
    chat = await _direct(api, a, b)
    secret = f"the vault code is {uuid.uuid4().hex}"
    assert (
        await api.post(f"/v1/chats/{chat}/messages", json={"content": secret}, headers=a.headers)
    ).status_code == 201
    doc = await eventually(
        lambda: database.db["messages"].find_one({"chat_id": chat}), lambda d: d is not None
    )
    assert "content" not in doc
    assert doc["content_sealed"]["kid"] == database.cipher.current
    assert secret.encode() not in bson.encode(doc)
    page = await json_of(api.get(f"/v1/chats/{chat}/messages", headers=b.headers))
    assert page["items"][0]["content"] == secret


async def test_rotated_keys_keep_old_messages_readable(settings, database):
    k1 = base64.b64encode(os.urandom(32)).decode()
    k2 = base64.b64encode(os.urandom(32)).decode()
    from models.chats import Message, message_id_for

    def message(seq: int, text: str) -> Message:
        return Message(
            message_id=message_id_for("rot", seq),
            chat_id="rot",
            seq=seq,
            **{"from": "ann"},
            timestamp="2026-11-24T00:00:00Z",
            message_type="text",
            content=text,
            is_private=True,
        )

    settings.message_keys = {"k1": SecretStr(k1)}
    old = await open_database(settings, create_indexes=False)
    await MessageRepository(old).store([message(1, "sealed under k1")])
    settings.message_keys = {"k1": SecretStr(k1), "k2": SecretStr(k2)}
    settings.message_key_id = "k2"
    new = await open_database(settings, create_indexes=False)
    await MessageRepository(new).store([message(2, "sealed under k2")])
    try:
        stored = await MessageRepository(new).page("rot", 0, 10)
        assert [m.content for m in stored] == ["sealed under k1", "sealed under k2"]
        kids = [
            d["content_sealed"]["kid"]
            async for d in database.db["messages"].find({"chat_id": "rot"}).sort("seq", 1)
        ]
        assert kids == ["k1", "k2"]
    finally:
        await old.close()
        await new.close()
