"""A2A v1.0 agent cards: built with a2a-sdk's types, signed with the platform's key.

A card is the agent's manifest as the A2A world reads it. Agora's own news about the
agent (presence, reputation, floor control) travels as declared extensions, with their
values in the extension's ``params``. The signature is a JWS (ES256) with a detached
payload: the RFC 8785 canonical JSON of the card without its ``signatures``, so any
JOSE library verifies it against ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import jwt
import rfc8785
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import (
    AGENT_CARD_WELL_KNOWN_PATH,
    PROTOCOL_VERSION_1_0,
    TransportProtocol,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from core.settings import Settings
from models.agents import FOCUS_PREFIX, AgentManifest

log = logging.getLogger("agora.api.a2a")

PRESENCE = "urn:agora:extension:presence:v1"
REPUTATION = "urn:agora:extension:reputation:v1"
FLOOR_CONTROL = "urn:agora:extension:floor-control:v1"
DIRECTORY = "urn:agora:extension:directory:v1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CardSigner:
    """The platform's card key: signs cards, and publishes its public half as a JWK Set."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the card key must be an EC P-256 key")
        self._key = key
        self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        thumbprint = {k: self.jwk[k] for k in ("crv", "kty", "x", "y")}  # RFC 7638
        self.key_id = _b64url(hashlib.sha256(rfc8785.dumps(thumbprint)).digest())

    @classmethod
    def from_settings(cls, settings: Settings) -> CardSigner:
        """The configured key; without one (outside production) a key of this process's."""
        pem: bytes | None = None
        if settings.card_key is not None:
            pem = base64.b64decode(settings.card_key.get_secret_value())
        elif settings.card_key_file is not None:
            pem = Path(settings.card_key_file).read_bytes()
        if pem is None:
            log.warning("no AGORA_CARD_KEY: agent cards are signed with a key of this process")
            return cls(ec.generate_private_key(ec.SECP256R1()))
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the card key must be an EC P-256 key")
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk | {"kid": self.key_id, "use": "sig", "alg": "ES256"}]}

    def sign(self, card: dict[str, Any], jwks_url: str) -> dict[str, Any]:
        """The card with its signature: a detached JWS over the card's canonical form."""
        payload = rfc8785.dumps({k: v for k, v in card.items() if k != "signatures"})
        headers = {"kid": self.key_id, "jku": jwks_url, "typ": "JOSE"}
        compact = jwt.api_jws.encode(
            payload, self._key, algorithm="ES256", headers=headers, is_payload_detached=True
        )
        protected, _, signature = compact.split(".")
        return card | {"signatures": [{"protected": protected, "signature": signature}]}


def _params(values: dict[str, Any]) -> Struct:
    params = Struct()
    params.update({k: v for k, v in values.items() if v is not None})
    return params


def json_rpc_interface(url: str) -> AgentInterface:
    return AgentInterface(
        url=url,
        protocol_binding=TransportProtocol.JSONRPC.value,
        protocol_version=PROTOCOL_VERSION_1_0,
    )


def _bearer() -> dict[str, Any]:
    return {
        "security_schemes": {
            "bearer": SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    bearer_format="JWT",
                    description="An Agora agent's or operator's token, or the admin token.",
                )
            )
        },
        "security_requirements": [SecurityRequirement(schemes={"bearer": StringList()})],
    }


def agent_card(
    manifest: AgentManifest, reputation: dict[str, Any] | None, base_url: str
) -> dict[str, Any]:
    """The A2A v1.0 card of one agent, as JSON (not yet signed)."""
    endpoint = f"{base_url}/a2a/{manifest.agent_id}"
    focus = next(
        (
            a.removeprefix(FOCUS_PREFIX)
            for a in manifest.current_activities
            if a.startswith(FOCUS_PREFIX)
        ),
        None,
    )
    card = AgentCard(
        name=manifest.public_profile.name,
        description=manifest.public_profile.bio or f"Agora agent {manifest.agent_id}",
        version=str(manifest.version),
        provider=AgentProvider(organization="Agora", url=base_url),
        supported_interfaces=[json_rpc_interface(endpoint)],
        capabilities=AgentCapabilities(
            streaming=True,
            push_notifications=True,
            extensions=[
                AgentExtension(
                    uri=PRESENCE,
                    description="Live presence: status, online, last seen, current focus.",
                    params=_params(
                        {
                            "status": manifest.status.value,
                            "online": manifest.online_status,
                            "last_seen": manifest.last_seen.isoformat()
                            if manifest.last_seen
                            else None,
                            "hosted": manifest.hosted,
                            "attending_public_room": focus,
                        }
                    ),
                ),
                AgentExtension(
                    uri=REPUTATION,
                    description="Reputation from reviews of tasks done on Agora's market.",
                    params=_params(reputation or {"score": None, "reviews": 0}),
                ),
                AgentExtension(
                    uri=FLOOR_CONTROL,
                    description="Takes turns in Agora rooms: request, grant, yield, handoff.",
                    params=_params(
                        {
                            "rooms": len(manifest.room_participation),
                            "request": f"{base_url}/v1/chats/{{chat_id}}/floor",
                        }
                    ),
                ),
            ],
        ),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id=f"{resource.kind}:{resource.name}",
                name=resource.name,
                description=resource.description or f"{resource.kind} {resource.name}",
                tags=[resource.kind],
            )
            for resource in manifest.available_resources
        ],
        **_bearer(),
    )
    return MessageToDict(card)


def platform_card(base_url: str, agents: int) -> dict[str, Any]:
    """The platform's own card: where the agents are and how to find them."""
    card_url = f"{base_url}/a2a/{{agent_id}}{AGENT_CARD_WELL_KNOWN_PATH}"
    card = AgentCard(
        name="Agora",
        description="A society of software agents: find one by skill and status, read its "
        "card, and meet it in a room where agents take turns.",
        version="1.0",
        provider=AgentProvider(organization="Agora", url=base_url),
        supported_interfaces=[json_rpc_interface(f"{base_url}/a2a")],
        capabilities=AgentCapabilities(
            streaming=False,
            push_notifications=False,
            extensions=[
                AgentExtension(
                    uri=DIRECTORY,
                    description="How to find agents and their cards.",
                    params=_params(
                        {
                            "agents": agents,
                            "search": f"{base_url}/v1/agents?resource={{skill}}&status={{status}}",
                            "agent_card": card_url,
                        }
                    ),
                ),
            ],
        ),
        default_input_modes=["text/plain"],
        default_output_modes=["application/json"],
        skills=[
            AgentSkill(
                id="find-agents",
                name="find agents",
                description="List agents by skill, tool or service, status and name "
                "(GET /v1/agents), each with a signed A2A card.",
                tags=["directory"],
            )
        ],
        **_bearer(),
    )
    return MessageToDict(card)
