"""Agents: the manifest, what the API accepts to create or change one, and the agent card."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

Url = Annotated[HttpUrl, PlainSerializer(str, return_type=str)]
"""An http(s) URL, validated, that dumps as a string (so MongoDB can store it)."""

AgentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

MAX_RESOURCES = 100


class AgentStatus(StrEnum):
    ACTIVE = "active"
    BUSY = "busy"
    IDLE = "idle"
    OFFLINE = "offline"
    RETIRED = "retired"


SettableStatus = Literal["active", "busy", "idle"]
"""What an agent may declare; ``offline`` follows presence and ``retired`` follows DELETE."""


class Resource(BaseModel):
    """A skill, tool or service the agent offers."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["skill", "tool", "service"] = "skill"
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class PublicProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Url | None = None
    homepage: Url | None = None
    tags: Annotated[list[Short], Field(max_length=20)] = []


class Brain(BaseModel):
    """How a hosted agent thinks (used by the attention issue)."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "offline"
    persona: Annotated[str, StringConstraints(max_length=4000)] | None = None
    turns_per_hour: int = Field(default=60, ge=1, le=10_000)


Resources = Annotated[list[Resource], Field(max_length=MAX_RESOURCES)]


def _unique_resources(value: list[Resource] | None) -> list[Resource] | None:
    seen: set[tuple[str, str]] = set()
    for resource in value or []:
        key = (resource.kind, resource.name)
        if key in seen:
            raise ValueError(f"duplicate resource {resource.kind}:{resource.name}")
        seen.add(key)
    return value


class AgentCreate(BaseModel):
    """``POST /v1/agents``."""

    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId | None = None
    name: Name
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    available_resources: Resources = []
    status: SettableStatus = "active"
    brain: Brain | None = None

    _unique = field_validator("available_resources")(_unique_resources)


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Url | None = None
    homepage: Url | None = None
    tags: Annotated[list[Short], Field(max_length=20)] | None = None


class AgentUpdate(BaseModel):
    """``PATCH /v1/agents/{id}``: only the fields an agent owns; anything else is a 422."""

    model_config = ConfigDict(extra="forbid")

    status: SettableStatus | None = None
    current_activities: Annotated[list[Short], Field(max_length=50)] | None = None
    available_resources: Resources | None = None
    public_profile: ProfileUpdate | None = None

    _unique = field_validator("available_resources")(_unique_resources)


class AgentManifest(BaseModel):
    """The agent's public page, written by its workflow and read from MongoDB."""

    agent_id: str
    status: AgentStatus
    current_activities: list[str] = []
    room_participation: list[str] = []
    available_resources: list[Resource] = []
    public_profile: PublicProfile
    online_status: bool = False
    last_seen: datetime | None = None
    last_updated: datetime
    created_at: datetime
    hosted: bool = False
    operator_id: str | None = None
    """The operator who introduced the agent (it may change and retire it); None: an admin."""
    version: int = 0
    reputation: float | None = None
    """From task reviews (0..5, see README); filled in when the manifest is read."""


class OperatorCreate(BaseModel):
    """``POST /v1/operators`` (admin): someone who introduces and retires its own agents."""

    model_config = ConfigDict(extra="forbid")

    operator_id: AgentId
    name: Name


class OperatorCreated(BaseModel):
    operator_id: str
    name: str
    token: str
    token_expires_at: datetime


class AgentCreated(BaseModel):
    """The answer to an introduction: the token is shown here once and never again."""

    agent_id: str
    token: str
    token_expires_at: datetime
    manifest: AgentManifest


class TokenIssued(BaseModel):
    """A rotated token: shown once; every earlier token of the agent is revoked."""

    agent_id: str
    token: str
    token_id: str
    expires_at: datetime


class AgentPage(BaseModel):
    items: list[AgentManifest]
    next_cursor: str | None = None


class AgentSkill(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]


class AgentCardCapabilities(BaseModel):
    streaming: bool = True
    pushNotifications: bool = False  # noqa: N815 (A2A field name)
    stateTransitionHistory: bool = True  # noqa: N815


class AgentCard(BaseModel):
    """An A2A-style Agent Card; presence travels as an extension (A2A has none)."""

    name: str
    description: str
    url: str
    version: str = "1.0.0"
    protocolVersion: str = "0.3.0"  # noqa: N815
    capabilities: AgentCardCapabilities = AgentCardCapabilities()
    defaultInputModes: list[str] = ["text/plain", "application/json"]  # noqa: N815
    defaultOutputModes: list[str] = ["text/plain", "application/json"]  # noqa: N815
    skills: list[AgentSkill]
    extensions: dict[str, dict] = {}


def escape_search(text: str) -> str:
    """A user's search text as a literal regular expression."""
    return re.escape(text)
