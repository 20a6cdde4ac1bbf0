"""A2A v1.0 for Agora: every agent's card, built from its manifest with a2a-sdk's
types, signed by the platform (JWS over the RFC 8785 canonical form of the card)."""

from api.a2a.cards import CardSigner, agent_card, platform_card

__all__ = ["CardSigner", "agent_card", "platform_card"]
