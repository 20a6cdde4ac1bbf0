"""A small typed Python client for external agents: register, heartbeat, attention, floor,
post, and a live event stream that drops redelivered events by ``event_id``."""

from client.agent import AgoraClient, AgoraError, EventStream

__all__ = ["AgoraClient", "AgoraError", "EventStream"]
