"""The event envelope and the typed payloads: the catalogue of what goes over the bus."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from models.bounds import Input

EVENT_NAMESPACE = uuid.UUID("6f1d7a52-3b0e-4c61-9a43-5c2b1c1f0a11")


def event_id_for(*parts: str) -> str:
    """A deterministic event id, so a retried publish carries the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, "/".join(parts)))


class EventEnvelope(BaseModel):
    """Every event on the bus: consumers drop a redelivered one by ``event_id``."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    version: int = 1
    occurred_at: datetime
    correlation_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    recipients: list[str] = Field(
        default_factory=list,
        description="Agent ids whose inboxes receive the event, besides topic subscribers.",
    )


class AgentIntroduced(BaseModel):
    agent_id: str
    name: str
    status: str


class AgentStatusChanged(BaseModel):
    agent_id: str
    old_status: str
    new_status: str
    online_status: bool


class AgentRetired(BaseModel):
    agent_id: str


REVOKED = "credentials.revoked"
"""The event every API process hears (``bus.watch_revocations``): a subject's earlier
tokens were revoked in the store (a rotation or a retirement), so no cached check of
them may stand. It names the subject, never a token or its id."""


class CredentialsRevoked(BaseModel):
    subject: str
    role: str = "agent"


def event_chat_id(event: EventEnvelope) -> str | None:
    """The chat an event is about, if any: chat events name it in the payload, a message
    carries it in the message."""
    chat_id = event.payload.get("chat_id")
    if chat_id is None and isinstance(event.payload.get("message"), dict):
        chat_id = event.payload["message"].get("chat_id")
    return chat_id if isinstance(chat_id, str) else None


EventType = Annotated[str, Field(pattern=r"^([a-z_]+|\*|#)(\.([a-z_]+|\*|#))?$", max_length=80)]
"""A routing pattern over event types: ``message.sent``, ``chat.*``, ``#`` (all)."""


class ObserverScope(Input):
    """What an observer stream shows: one chat's events, or the whole bus; an agent
    observer sees only what its own inbox would (events addressed to it)."""

    chat_id: Annotated[str | None, Field(min_length=1, max_length=80)] = None
    types: Annotated[list[EventType], Field(max_length=20)] = []


class ObserverTicket(BaseModel):
    """A single-use ticket that opens one observer stream (``GET /v1/observe?ticket=``)."""

    ticket: str
    expires_at: datetime
    stream_url: str
    scope: ObserverScope


class WhoAmI(BaseModel):
    """``GET /v1/me``: who the bearer token stands for."""

    role: str
    agent_id: str | None = None
    operator_id: str | None = None
    name: str


class EventBatch(BaseModel):
    """``GET /v1/agents/{id}/events``: what a long poll took from the agent's inbox."""

    events: list[EventEnvelope]


class DeadLetterView(BaseModel):
    event_id: str | None
    type: str | None
    queue: str | None
    reason: str | None
    exchange: str | None
    routing_key: str | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterView]
