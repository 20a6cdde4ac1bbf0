"""A2A v1.0 for Agora: every agent's card, built from its manifest with a2a-sdk's
types, signed by the platform (JWS over the RFC 8785 canonical form of the card), and
each agent's JSON-RPC binding on a2a-sdk's server pieces."""

from api.a2a.cards import CardSigner, agent_card, platform_card
from api.a2a.replies import ReplyWatch
from api.a2a.server import a2a_door, sweep_left_tasks

__all__ = [
    "CardSigner",
    "ReplyWatch",
    "a2a_door",
    "agent_card",
    "platform_card",
    "sweep_left_tasks",
]
