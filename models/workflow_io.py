"""Typed inputs, results and state of the workflows and activities."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.agents import AgentManifest, AgentUpdate
from models.events import EventEnvelope


class AgentState(BaseModel):
    """Everything ``AgentWorkflow`` knows; handed whole to ``continue_as_new``."""

    manifest: AgentManifest
    token_hash: str
    offline_after_seconds: float
    continue_as_new_after_events: int = 10_000
    status_before_offline: str | None = None
    stored_version: int = -1
    pending_events: list[EventEnvelope] = []
    credential_stored: bool = False
    introduced: bool = False
    retiring: bool = False
    retired: bool = False
    retire_correlation_id: str | None = None


class AgentStart(BaseModel):
    """Input of ``AgentWorkflow.run``: a fresh introduction or a continued state."""

    state: AgentState
    correlation_id: str | None = None


class ManifestChange(BaseModel):
    """An ``AgentUpdate`` with the correlation id of the request that asked for it."""

    update: AgentUpdate
    profile_fields: list[str] = []
    """The profile fields the caller set (a null clears an optional one)."""
    correlation_id: str | None = None


class RetireRequest(BaseModel):
    correlation_id: str | None = None


class Heartbeat(BaseModel):
    correlation_id: str | None = None


class StoreManifestInput(BaseModel):
    manifest: AgentManifest


class StoreCredentialInput(BaseModel):
    agent_id: str
    token_hash: str
    revoked: bool = False


class PublishEventsInput(BaseModel):
    events: list[EventEnvelope] = Field(min_length=1)
