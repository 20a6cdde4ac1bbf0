"""Floor control in group chats: settings, requests, the floor's state and its public view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, StringConstraints

from models.bounds import Input, PlainName

Policy = Literal["fifo", "priority", "round_robin", "random", "moderator", "llm"]
POLICIES: tuple[str, ...] = ("fifo", "priority", "round_robin", "random", "moderator", "llm")

TurnSeconds = Annotated[float, Field(ge=1, le=3600)]
TurnMessages = Annotated[int, Strict(), Field(ge=1, le=1000)]
Priority = Annotated[int, Strict(), Field(ge=0, le=10)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), PlainName]


class FloorSettings(Input):
    """How a group chat takes turns; every bound is checked (422 outside it)."""

    speaker_policy: Policy = "fifo"
    turn_seconds: TurnSeconds = 60
    max_messages_per_turn: TurnMessages = 5
    max_turns: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = None
    idle_timeout_seconds: TurnSeconds | None = None
    termination_text: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class FloorSettingsUpdate(Input):
    """``PATCH /v1/chats/{id}/floor``: owner or admins change the policy and the limits."""

    speaker_policy: Policy | None = None
    turn_seconds: TurnSeconds | None = None
    max_messages_per_turn: TurnMessages | None = None
    max_turns: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = None
    idle_timeout_seconds: TurnSeconds | None = None
    termination_text: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class FloorAsk(Input):
    """``POST /v1/chats/{id}/floor``: a request to speak."""

    priority: Priority = 0
    reason: Reason | None = None


class FloorGrant(Input):
    """``POST /v1/chats/{id}/floor/grant``: a moderator hands the floor to a requester."""

    agent_id: str


class FloorRequest(BaseModel):
    agent_id: str
    priority: int = 0
    reason: str | None = None
    requested_at: datetime
    order: int = 0
    """Arrival number: ties in time are broken by arrival, never by chance."""


class FloorState(BaseModel):
    """The floor of one chat, inside ``ChatWorkflow``'s state."""

    settings: FloorSettings
    current_speaker: str | None = None
    turn_started_at: datetime | None = None
    turn_ends_at: datetime | None = None
    messages_in_turn: int = 0
    queue: list[FloorRequest] = []
    last_speaker: str | None = None
    next_order: int = 0
    round: int = 1
    turns_in_round: int = 0
    round_open: bool = True
    last_activity_at: datetime | None = None
    grant_reason: str | None = None


class QueuedRequest(BaseModel):
    agent_id: str
    position: int
    priority: int
    reason: str | None = None
    requested_at: datetime


class FloorView(BaseModel):
    """``GET /v1/chats/{id}/floor``, and the answer to a request to speak."""

    chat_id: str
    speaker_policy: str
    current_speaker: str | None
    turn_started_at: datetime | None
    turn_ends_at: datetime | None
    messages_left: int | None
    queue: list[QueuedRequest]
    round: int
    turns_in_round: int
    your_position: int | None = Field(
        default=None, description="The caller's place in the queue (1 is next), if waiting."
    )
    you_hold_the_floor: bool = False
