"""A2A v1.0 cards: built from the manifest, valid for a2a-sdk, signed so that a JOSE
library (joserfc) verifies them against the platform's JWK Set."""

from __future__ import annotations

import copy

import pytest
import rfc8785
from a2a.types import AgentCard
from google.protobuf.json_format import ParseDict
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.helpers import group, introduce

REPUTATION = "urn:agora:extension:reputation:v1"
PRESENCE = "urn:agora:extension:presence:v1"
FLOOR = "urn:agora:extension:floor-control:v1"


async def verify(api, card: dict) -> dict:
    """Verify the card's signature with joserfc; the protected header, if it holds."""
    keys = KeySet.import_key_set((await api.get("/.well-known/jwks.json")).json())
    [signature] = card["signatures"]
    unsigned = {k: v for k, v in card.items() if k != "signatures"}
    compact = f"{signature['protected']}..{signature['signature']}"
    verified = jws.deserialize_compact(
        compact, keys, algorithms=["ES256"], payload=rfc8785.dumps(unsigned)
    )
    return verified.headers()


async def test_an_agents_card_is_its_public_manifest_signed_by_the_platform(api, admin):
    ada = await introduce(
        api,
        admin,
        "Ada",
        bio="Counts, fits and doubts.",
        available_resources=[
            {"kind": "skill", "name": "statistics"},
            {"kind": "tool", "name": "plotter", "description": "draws"},
        ],
    )
    bob = await introduce(api, admin, "Bob")
    await group(api, ada, bob, topic="private", join_rule="invite")
    response = await api.get(f"/a2a/{ada.agent_id}/.well-known/agent-card.json")
    assert response.status_code == 200
    card = response.json()

    ParseDict(card, AgentCard())  # a valid A2A v1.0 card for the SDK
    assert card["name"] == "Ada" and card["description"] == "Counts, fits and doubts."
    [interface] = card["supportedInterfaces"]
    assert interface["url"].endswith(f"/a2a/{ada.agent_id}")
    assert (interface["protocolBinding"], interface["protocolVersion"]) == ("JSONRPC", "1.0")
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert [s["id"] for s in card["skills"]] == ["skill:statistics", "tool:plotter"]
    extensions = {e["uri"]: e.get("params", {}) for e in card["capabilities"]["extensions"]}
    assert extensions[PRESENCE]["status"] == "active"
    assert extensions[REPUTATION]["reviews"] == 0
    assert extensions[FLOOR]["rooms"] == 0  # the private room is not for the public

    header = await verify(api, card)
    assert header["alg"] == "ES256" and header["jku"].endswith("/.well-known/jwks.json")
    tampered = copy.deepcopy(card)
    tampered["name"] = "Mallory"
    with pytest.raises(BadSignatureError):
        await verify(api, tampered)


async def test_the_platform_has_a_signed_card_that_says_how_to_find_agents(api, admin):
    await introduce(api, admin, "Cy")
    card = (await api.get("/.well-known/agent-card.json")).json()
    ParseDict(card, AgentCard())
    [directory] = card["capabilities"]["extensions"]
    assert directory["params"]["agent_card"].endswith("/a2a/{agent_id}/.well-known/agent-card.json")
    assert directory["params"]["agents"] >= 1
    header = await verify(api, card)
    jwks = (await api.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [header["kid"]]
    assert all("d" not in k for k in jwks["keys"])  # the public half only


async def test_a_card_of_no_agent_is_404(api):
    response = await api.get("/a2a/nobody-here/.well-known/agent-card.json")
    assert response.status_code == 404


async def test_the_json_rpc_door_answers_json_rpc_errors_never_a_500(api, admin):
    ada = await introduce(api, admin, "Ada")
    bob = await introduce(api, admin, "Bob")
    door = f"/a2a/{ada.agent_id}"
    anonymous = await api.post(door, json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    cases = [
        (b"{not json", -32700),
        (b'{"jsonrpc": "1.0", "method": "SendMessage"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "Teleport"}', -32601),
        (b'{"jsonrpc": "2.0", "id": 9, "method": "GetTask", "params": {"id": "no-such"}}', -32001),
        # the card is public and whole: no extended card, for anyone
        (b'{"jsonrpc": "2.0", "id": 6, "method": "GetExtendedAgentCard", "params": {}}', -32007),
        (b'{"jsonrpc": "2.0", "id": 8, "method": "SendMessage", "params": {}}', -32602),
    ]
    headers = {"Content-Type": "application/json", "A2A-Version": "1.0"} | bob.headers
    for body, code in cases:
        response = await api.post(door, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["error"]["code"] == code, (body, response.text)
    assert response.json()["id"] == 8
    platform = await api.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"})
    assert platform.json()["error"]["code"] == -32004
