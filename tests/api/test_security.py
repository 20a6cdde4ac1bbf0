"""Tokens, the one authorization layer, and secrets kept out of history, logs and errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from core.names import agent_workflow_id
from core.temporal import connect_temporal
from tests.helpers import Agent, app_client, bearer, group, introduce
from workflows.agent import AgentWorkflow

# ---- forging tokens -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, sign) -> str:
    """A JWT put together by hand, so that no library refuses to make a bad one."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def hs256(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def _now() -> int:
    return int(time.time())


def _variants(secret: bytes):
    """Name -> how to turn a valid token's claims into a token the server must refuse."""
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "alg none": lambda c: forge({"alg": "none", "typ": "JWT"}, c, lambda _: b""),
        "alg none, no signature": lambda c: forge({"alg": "none"}, c, lambda _: b"")[:-1],
        "RS256 on an HS256 server": lambda c: jwt.encode(c, other_rsa, algorithm="RS256"),
        "wrong key": lambda c: jwt.encode(c, b"not-the-server-secret-" * 2, algorithm="HS256"),
        "wrong aud": lambda c: jwt.encode(c | {"aud": "elsewhere"}, secret, algorithm="HS256"),
        "wrong iss": lambda c: jwt.encode(c | {"iss": "mallory"}, secret, algorithm="HS256"),
        "expired": lambda c: jwt.encode(
            c | {"iat": _now() - 7200, "nbf": _now() - 7200, "exp": _now() - 3600},
            secret,
            algorithm="HS256",
        ),
        "not yet valid": lambda c: jwt.encode(
            c | {"nbf": _now() + 3600}, secret, algorithm="HS256"
        ),
        "no jti": lambda c: jwt.encode(
            {k: v for k, v in c.items() if k != "jti"}, secret, algorithm="HS256"
        ),
        "unknown jti": lambda c: jwt.encode(
            c | {"jti": uuid.uuid4().hex}, secret, algorithm="HS256"
        ),
        "jti of another agent": None,  # filled in by the test
        "role raised to operator": lambda c: jwt.encode(
            c | {"role": "operator"}, secret, algorithm="HS256"
        ),
        "tampered subject": lambda c: forge(
            {"alg": "HS256", "typ": "JWT"}, c | {"sub": "someone-else"}, hs256(b"guess")
        ),
        "garbage": lambda c: "not.a.jwt",
    }


VARIANTS = list(_variants(b"x"))


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_bad_token_gets_401_and_a_reason_without_the_token(api, admin, settings, variant):
    me = await introduce(api, admin, "Tok")
    other = await introduce(api, admin, "Other")
    secret = settings.token_secret.get_secret_value().encode()
    claims = claims_of(me.token)
    if variant == "jti of another agent":
        bad = jwt.encode(claims | {"jti": claims_of(other.token)["jti"]}, secret, algorithm="HS256")
    else:
        bad = _variants(secret)[variant](claims)

    assert (await api.get(f"/v1/agents/{me.agent_id}", headers=me.headers)).status_code == 200
    refused = await api.get(f"/v1/agents/{me.agent_id}", headers=bearer(bad))
    assert refused.status_code == 401, (variant, refused.text)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert bad not in refused.text and me.token not in refused.text


async def test_rotation_revokes_the_old_token_and_the_new_one_works(api, admin):
    me = await introduce(api, admin, "Rot")
    stranger = await introduce(api, admin, "Stranger")
    url = f"/v1/agents/{me.agent_id}/tokens"

    assert (await api.post(url, headers=stranger.headers)).status_code == 403
    rotated = await api.post(url, headers=me.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["token"] != me.token and new["token_id"] == claims_of(new["token"])["jti"]

    old = await api.get(f"/v1/agents/{me.agent_id}", headers=me.headers)
    assert old.status_code == 401 and old.json()["detail"] == "token revoked"
    assert (await api.get(f"/v1/agents/{me.agent_id}", headers=bearer(new["token"]))).is_success

    # an admin rotates too; the token the agent held a moment ago stops working
    by_admin = await api.post(url, headers=admin)
    assert by_admin.status_code == 201
    assert (await api.get("/v1/chats", headers=bearer(new["token"]))).status_code == 401
    assert (await api.get("/v1/chats", headers=bearer(by_admin.json()["token"]))).is_success


async def test_a_retired_agents_tokens_all_stop_working(api, admin):
    me = await introduce(api, admin, "Gone")
    second = (await api.post(f"/v1/agents/{me.agent_id}/tokens", headers=admin)).json()["token"]
    assert (await api.delete(f"/v1/agents/{me.agent_id}", headers=bearer(second))).is_success

    for token in (me.token, second):
        refused = await api.get("/v1/chats", headers=bearer(token))
        assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"
    late = await api.post(f"/v1/agents/{me.agent_id}/tokens", headers=admin)
    assert late.status_code == 409


async def test_operators_hold_jwts_with_the_operator_role(api, admin):
    created = await api.post(
        "/v1/operators",
        json={"operator_id": f"op-{uuid.uuid4().hex[:6]}", "name": "Op"},
        headers=admin,
    )
    token = created.json()["token"]
    assert claims_of(token)["role"] == "operator"
    mine = await introduce(api, bearer(token), "Run")
    assert mine.agent_id
    # an operator is not an agent: it cannot open chats, nor read the audit log
    assert (
        await api.post("/v1/chats", json={"type": "group"}, headers=bearer(token))
    ).status_code == 403
    assert (await api.get("/v1/audit", headers=bearer(token))).status_code == 403


def _key_files(tmp_path, algorithm: str):
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "jwt.key").write_bytes(private_pem)
    (tmp_path / "jwt.pub").write_bytes(public_pem)
    return public_pem


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_a_key_pair_signs_and_an_hs256_token_made_with_its_public_key_is_refused(
    settings, worker, admin, tmp_path, algorithm
):
    public_pem = _key_files(tmp_path, algorithm)
    settings.jwt_algorithm = algorithm
    settings.jwt_private_key_file = tmp_path / "jwt.key"
    settings.jwt_public_key_file = tmp_path / "jwt.pub"
    async with app_client(settings) as api:
        me = await introduce(api, admin, "Pair")
        assert jwt.get_unverified_header(me.token)["alg"] == algorithm
        assert (await api.get("/v1/chats", headers=me.headers)).is_success
        # the classic key confusion: HS256 with the public key as the shared secret
        swapped = forge({"alg": "HS256", "typ": "JWT"}, claims_of(me.token), hs256(public_pem))
        assert (await api.get("/v1/chats", headers=bearer(swapped))).status_code == 401
        secret = settings.token_secret.get_secret_value().encode()
        with_secret = jwt.encode(claims_of(me.token), secret, algorithm="HS256")
        assert (await api.get("/v1/chats", headers=bearer(with_secret))).status_code == 401


# ---- one authorization layer ----------------------------------------------------------


async def test_every_route_declares_its_requirement_and_refuses_a_caller_without_a_token(api):
    spec = (await api.get("/openapi.json")).json()
    operations = [
        (method.upper(), path, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    ]
    undeclared = [(m, p) for m, p, op in operations if not op.get("x-agora-access")]
    assert not undeclared, f"routes without a declared requirement: {undeclared}"
    assert len(operations) >= 30

    for method, path, op in operations:
        if "public" in op["x-agora-access"]:
            continue
        url = path.format(agent_id="someone", chat_id="some-chat", task_id="some-task")
        response = await api.request(method, url, json={})
        assert response.status_code == 401, (method, path, response.status_code)


async def test_a_stranger_reaches_no_object_of_others(api, admin, database):
    """Every route that names an agent or a chat, called by an agent that is neither that
    agent nor in that chat, nor a party to that task: refused (403/404), except reading
    a manifest, its reviews, a task and its candidates (public to every token) and the
    card (public);
    a bid by an agent without the skills is a 409. Nothing changes, no token moves."""
    owner = await introduce(api, admin, "Owner")
    friend = await introduce(api, admin, "Friend")
    stranger = await introduce(api, admin, "Stranger")
    chat = await group(api, owner, friend, topic="private plans")
    chat_id = chat["chat_id"]
    posted = await api.post(
        f"/v1/chats/{chat_id}/messages", json={"content": "only for us"}, headers=owner.headers
    )
    assert posted.status_code == 201
    before = (await api.get(f"/v1/chats/{chat_id}", headers=owner.headers)).json()
    skill = f"secrets_{uuid.uuid4().hex[:6]}"
    await api.post("/v1/skills", json={"name": skill}, headers=admin)
    await api.post(f"/v1/accounts/{owner.agent_id}/mint", json={"amount": 20}, headers=admin)
    deadline = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    task = (
        await api.post(
            "/v1/tasks",
            json={"title": "mine", "reward": 20, "deadline": deadline, "skills_required": [skill]},
            headers=owner.headers,
        )
    ).json()

    spec = (await api.get("/openapi.json")).json()
    open_to_all = {
        ("GET", "/v1/agents/{agent_id}"),
        ("GET", "/v1/agents/{agent_id}/card"),
        ("GET", "/a2a/{agent_id}/.well-known/agent-card.json"),  # public, as A2A's are
        # any agent may message any agent over A2A, as it may open a direct chat over REST;
        # a caller sees only its own tasks (tests/api/test_a2a_rpc.py)
        ("POST", "/a2a/{agent_id}"),
        ("GET", "/v1/agents/{agent_id}/reviews"),  # what the public reputation is made of
        ("GET", "/v1/tasks/{task_id}"),
        ("GET", "/v1/tasks/{task_id}/candidates"),
    }
    expected_instead = {("POST", "/v1/tasks/{task_id}/bids"): 409}
    bodies = {
        "/v1/chats/{chat_id}/members": {"agent_id": stranger.agent_id},
        "/v1/chats/{chat_id}/members/{agent_id}": {"role": "admin"},
        "/v1/chats/{chat_id}/messages": {"content": "let me in"},
        "/v1/chats/{chat_id}/read": {"up_to_seq": 1},
        "/v1/chats/{chat_id}/floor": {"priority": 1},
        "/v1/chats/{chat_id}/floor/grant": {"agent_id": stranger.agent_id},
        "/v1/agents/{agent_id}": {"status": "busy"},
        "/v1/agents/{agent_id}/attention": {"scheduler": "round_robin"},
        "/v1/accounts/{agent_id}/mint": {"amount": 5},
        "/v1/accounts/{agent_id}/transfers": {"recipient": stranger.agent_id, "amount": 5},
        "/v1/tasks/{task_id}/bids": {"price": 1},
        "/v1/tasks/{task_id}/assign": {"agent_id": stranger.agent_id},
        "/v1/tasks/{task_id}/submit": {"result": "mine now"},
        "/v1/tasks/{task_id}/reject": {"reason": "no"},
        "/v1/tasks/{task_id}/reviews": {"rating": 1},
    }
    checked = 0
    for path, methods in spec["paths"].items():
        if "{" not in path:
            continue
        for method in methods:
            method = method.upper()
            if (method, path) in open_to_all:
                continue
            url = path.format(agent_id=owner.agent_id, chat_id=chat_id, task_id=task["task_id"])
            body = bodies.get(path) if method in ("POST", "PATCH") else None
            response = await api.request(method, url, json=body, headers=stranger.headers)
            allowed = (
                {expected_instead[(method, path)]}
                if (method, path) in expected_instead
                else {403, 404}
            )
            assert response.status_code in allowed, (method, path, response.text)
            assert "only for us" not in response.text
            checked += 1
    assert checked >= 28

    after = (await api.get(f"/v1/chats/{chat_id}", headers=owner.headers)).json()
    assert after["members"] == before["members"] and after["closed"] is False
    page = (await api.get(f"/v1/chats/{chat_id}/messages", headers=owner.headers)).json()
    assert [m["content"] for m in page["items"]] == ["only for us"]
    manifest = (await api.get(f"/v1/agents/{owner.agent_id}", headers=owner.headers)).json()
    assert manifest["status"] == "active"
    unchanged = (await api.get(f"/v1/tasks/{task['task_id']}", headers=owner.headers)).json()
    assert unchanged["status"] == "open" and unchanged["bids"] == []
    account = (await api.get(f"/v1/accounts/{owner.agent_id}", headers=owner.headers)).json()
    assert account["balance"] == 0  # 20 minted, 20 in escrow, nothing else moved


# ---- secrets stay out of sight ---------------------------------------------------------


def history_text(history_json: str) -> str:
    """A workflow history as text with every payload decoded (payloads are base64)."""
    decoded: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                decoded.append(base64.b64decode(node["data"]).decode(errors="replace"))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(history_json))
    return history_json + "\n" + "\n".join(decoded)


async def test_no_token_in_temporal_history_events_or_logs(api, admin, settings, caplog):
    caplog.set_level(logging.DEBUG)
    me = await introduce(api, admin, "Quiet")
    rotated = (await api.post(f"/v1/agents/{me.agent_id}/tokens", headers=me.headers)).json()
    await api.get("/v1/chats", headers=me.headers)  # a refused, revoked token
    await api.get("/v1/chats", headers=bearer(me.token + "x"))

    client = await connect_temporal(settings)
    handle = client.get_workflow_handle_for(AgentWorkflow.run, agent_workflow_id(me.agent_id))
    history = history_text((await handle.fetch_history()).to_json())
    assert claims_of(me.token)["jti"] in history  # ids, yes
    secrets = [
        me.token,
        rotated["token"],
        me.token.rsplit(".", 1)[1],  # a signature alone is a secret too
        rotated["token"].rsplit(".", 1)[1],
        settings.token_secret.get_secret_value(),
        settings.admin_token.get_secret_value(),
    ]
    for secret in secrets:
        assert secret not in history
        assert secret not in caplog.text
    # the step that published its events is in the history too (a local activity: its
    # input is not recorded, a fallback activity's would be, and carries no token either)
    assert "Publish the agent's events, store its manifest and attention" in history


async def test_the_admin_token_is_compared_whole(api, admin, settings):
    token = settings.admin_token.get_secret_value()
    for wrong in (token[:-1], token + "0", token.upper(), ""):
        assert (await api.get("/v1/audit", headers=bearer(wrong))).status_code == 401


async def test_agents_keep_to_their_own_attention_and_tokens(api, admin):
    a: Agent = await introduce(api, admin, "Aa")
    b: Agent = await introduce(api, admin, "Bb")
    assert (
        await api.get(f"/v1/agents/{b.agent_id}/attention", headers=a.headers)
    ).status_code == 403
    assert (
        await api.patch(
            f"/v1/agents/{b.agent_id}/attention", json={"scheduler": "fifo"}, headers=a.headers
        )
    ).status_code == 403
    assert (await api.post(f"/v1/agents/{b.agent_id}/tokens", headers=a.headers)).status_code == 403
    assert (await api.get(f"/v1/agents/{b.agent_id}", headers=b.headers)).is_success
