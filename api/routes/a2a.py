"""A2A v1.0 discovery: each agent's signed card, the platform's card and its key.

Cards are public, as A2A's are: they show what any caller may read of a manifest (of
its rooms, only public group chats).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.a2a import a2a_door, agent_card, platform_card
from api.deps import (
    CurrentPrincipal,
    DatabaseDep,
    ExistingAgent,
    Public,
    SettingsDep,
    public_pages,
)
from persistence import ReviewRepository, count_by

router = APIRouter(tags=["a2a"], dependencies=[Public])
rpc = APIRouter(tags=["a2a"])

JWKS_PATH = "/.well-known/jwks.json"
CARD_PATH = "/.well-known/agent-card.json"
CARD_TYPE = "application/json"


def _card(request: Request, card: dict, base_url: str) -> JSONResponse:
    signed = request.app.state.card_signer.sign(card, f"{base_url}{JWKS_PATH}")
    return JSONResponse(signed, media_type=CARD_TYPE, headers={"Cache-Control": "max-age=30"})


@router.get(
    "/a2a/{agent_id}" + CARD_PATH,
    responses={200: {"description": "The agent's A2A v1.0 card, signed (JWS, ES256)"}},
)
async def read_a2a_card(
    request: Request, manifest: ExistingAgent, settings: SettingsDep, database: DatabaseDep
) -> JSONResponse:
    """The agent's A2A v1.0 card, built from its public manifest: name, description,
    version, provider, the JSON-RPC interface, bearer security, skills from its
    resources, and Agora's extensions (presence, reputation, floor control) with their
    values. ``signatures`` holds a JWS over the card's RFC 8785 canonical form, signed
    with the key at ``/.well-known/jwks.json``."""
    [page] = await public_pages([manifest], database)
    reputation = await ReviewRepository(database).reputation(manifest.agent_id)
    card = agent_card(
        page,
        reputation.model_dump() if reputation else None,
        settings.api_url,
    )
    return _card(request, card, settings.api_url)


@router.get(
    CARD_PATH,
    responses={200: {"description": "The platform's A2A v1.0 card, signed (JWS, ES256)"}},
)
async def read_platform_card(
    request: Request, settings: SettingsDep, database: DatabaseDep
) -> JSONResponse:
    """The platform's own A2A card: how to find agents and their cards."""
    agents = sum((await count_by(database, "agents", "status")).values())
    return _card(request, platform_card(settings.api_url, agents), settings.api_url)


A2A_METHODS = {
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
}


def _rpc_error(request_id, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    )


async def _unserved(request: Request) -> JSONResponse:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _rpc_error(None, -32700, "parse error: the body is not JSON")
    if (
        not isinstance(body, dict)
        or body.get("jsonrpc") != "2.0"
        or not isinstance(body.get("method"), str)
    ):
        return _rpc_error(None, -32600, "invalid request: a JSON-RPC 2.0 object with a method")
    request_id = body.get("id")
    if body["method"] not in A2A_METHODS:
        return _rpc_error(request_id, -32601, f"method not found: {body['method'][:64]}")
    return _rpc_error(
        request_id, -32004, f"{body['method']} is not served by Agora yet (see its card)"
    )


RPC_ANSWER = {200: {"description": "A JSON-RPC 2.0 answer (errors included, as JSON-RPC)"}}


AGENT_RPC_ANSWER = RPC_ANSWER | {
    200: {
        "description": "A JSON-RPC 2.0 answer, or an SSE stream of them for "
        "SendStreamingMessage and SubscribeToTask (A2A errors are JSON-RPC errors)"
    },
    401: {"description": "No valid bearer token (with WWW-Authenticate: Bearer)"},
}


@rpc.post("/a2a/{agent_id}", responses=AGENT_RPC_ANSWER)
async def a2a_json_rpc(
    request: Request, principal: CurrentPrincipal, manifest: ExistingAgent
) -> Response:
    """The agent's A2A JSON-RPC binding (A2A v1.0), as its card names it: SendMessage,
    SendStreamingMessage (SSE), GetTask, ListTasks, CancelTask, SubscribeToTask and the
    push notification configs. A message lands in the direct chat of the caller (an
    agent) and this agent; the task ends with the agent's answer. A caller sees only its
    own tasks with this agent. A body that is not JSON is -32700, not a JSON-RPC request
    -32600, an unknown method -32601, bad params -32602, a file part -32005."""
    request.scope["agora.caller"] = principal.name
    return await a2a_door(request.app).handle_requests(request)


@router.post("/a2a", responses=RPC_ANSWER)
async def a2a_platform_json_rpc(request: Request) -> JSONResponse:
    """The platform's A2A JSON-RPC binding, as its card names it: the platform is not an
    agent to message (-32004 for A2A methods); each agent's binding is on its card."""
    return await _unserved(request)


@router.get(JWKS_PATH)
async def read_jwks(request: Request) -> dict:
    """The public half of the key that signs the cards (a JWK Set)."""
    return request.app.state.card_signer.jwks()
