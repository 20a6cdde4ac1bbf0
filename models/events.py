"""The event envelope and the typed payloads: the catalogue of what goes over the bus."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
