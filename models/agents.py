"""Agents: the manifest, what the API accepts to create or change one, and the agent card."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    HttpUrl,
    PlainSerializer,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.bounds import Input, PlainName

Url = Annotated[HttpUrl, PlainSerializer(str, return_type=str)]
"""An http(s) URL, validated, that dumps as a string (so MongoDB can store it)."""

AgentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), PlainName
]
Short = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), PlainName
]

MAX_RESOURCES = 100


class AgentStatus(StrEnum):
    ACTIVE = "active"
    BUSY = "busy"
    IDLE = "idle"
    OFFLINE = "offline"
    RETIRED = "retired"


SettableStatus = Literal["active", "busy", "idle"]
"""What an agent may declare; ``offline`` follows presence and ``retired`` follows DELETE."""


class Resource(Input):
    """A skill, tool or service the agent offers."""

    kind: Literal["skill", "tool", "service"] = "skill"
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class PublicProfile(Input):
    name: Name
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Url | None = None
    homepage: Url | None = None
    tags: Annotated[list[Short], Field(max_length=20)] = []


TurnsPerHour = Annotated[int, Strict(), Field(ge=1, le=10_000)]
"""How many turns a hosted or remote agent may take in an hour."""


class Brain(Input):
    """How a hosted agent thinks (used by the attention issue)."""

    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "offline"
    persona: Annotated[str, StringConstraints(max_length=4000)] | None = None
    turns_per_hour: TurnsPerHour = 60


class Remote(Input):
    """An agent that thinks elsewhere and speaks A2A: Agora reads its card and asks it,
    over A2A, for its turn in a room or its answer in a direct chat."""

    a2a_card_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]
    """Its A2A agent card (its host must be in the ``a2a_allowed_hosts`` setting)."""
    turns_per_hour: TurnsPerHour = 60


ResourceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def _as_resource(value: Resource | str) -> Resource:
    return Resource(name=value) if isinstance(value, str) else value


Resources = Annotated[
    list[Annotated[Resource | ResourceName, AfterValidator(_as_resource)]],
    Field(
        max_length=MAX_RESOURCES,
        description='Skills, tools or services; a plain name ("translation") is a skill.',
    ),
]


def _unique_resources(value: list[Resource] | None) -> list[Resource] | None:
    seen: set[tuple[str, str]] = set()
    for resource in value or []:
        key = (resource.kind, resource.name)
        if key in seen:
            raise ValueError(f"duplicate resource {resource.kind}:{resource.name}")
        seen.add(key)
    return value


class AgentCreate(Input):
    """``POST /v1/agents``."""

    agent_id: AgentId | None = None
    name: Name
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    available_resources: Resources = []
    status: SettableStatus = "active"
    brain: Brain | None = None
    remote: Remote | None = None

    _unique = field_validator("available_resources")(_unique_resources)

    @model_validator(mode="after")
    def _one_mind(self) -> AgentCreate:
        if self.brain is not None and self.remote is not None:
            raise ValueError("remote: an agent has a brain here or a remote mind, not both")
        return self


BATCH_MAX = 100


class AgentBatch(Input):
    """``POST /v1/agents:batch``: up to 100 introductions, all valid or none made."""

    agents: Annotated[list[AgentCreate], Field(min_length=1, max_length=BATCH_MAX)]

    @model_validator(mode="after")
    def _distinct_ids(self) -> AgentBatch:
        first: dict[str, int] = {}
        for index, entry in enumerate(self.agents):
            if entry.agent_id is None:
                continue
            if entry.agent_id in first:
                raise ValueError(
                    f"agents.{index}.agent_id: the same id as entry {first[entry.agent_id]}"
                )
            first[entry.agent_id] = index
        return self


class ProfileUpdate(Input):
    name: Name | None = None
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Url | None = None
    homepage: Url | None = None
    tags: Annotated[list[Short], Field(max_length=20)] | None = None


class AgentUpdate(Input):
    """``PATCH /v1/agents/{id}``: only the fields an agent owns; anything else is a 422."""

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


class ManifestChangeRecord(BaseModel):
    """One version of the public page that changed it: which fields, and the page then."""

    version: int
    at: datetime
    changed: list[str]
    page: dict


class ManifestHistory(BaseModel):
    """``GET /v1/agents/{id}/history``: the page's last changes, newest first."""

    agent_id: str
    items: list[ManifestChangeRecord]


FOCUS_PREFIX = "attending chat "
"""The line of ``current_activities`` that names the chat the agent attends to."""


def public_view(manifest: AgentManifest, public_rooms: set[str]) -> AgentManifest:
    """The manifest as any other agent sees it: of its rooms, only public group chats (a
    direct chat or a private group would tell whom it talks to), and no focus line that
    names another room."""
    activities = [
        a
        for a in manifest.current_activities
        if not a.startswith(FOCUS_PREFIX) or a.removeprefix(FOCUS_PREFIX) in public_rooms
    ]
    rooms = [r for r in manifest.room_participation if r in public_rooms]
    return manifest.model_copy(
        update={"room_participation": rooms, "current_activities": activities}
    )


class OperatorCreate(Input):
    """``POST /v1/operators`` (admin): someone who introduces and retires its own agents."""

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


class AgentBatchCreated(BaseModel):
    """The answer to a batch: each agent with its own token, in the order asked (shown
    here once and never again)."""

    agents: list[AgentCreated]


class TokenIssued(BaseModel):
    """A rotated token: shown once; every earlier token of the agent is revoked."""

    agent_id: str
    token: str
    token_id: str
    expires_at: datetime


class StreamTicket(BaseModel):
    """A single-use ticket for one WebSocket stream (``?ticket=``), for clients that cannot
    send an Authorization header on a WebSocket (browsers). Shown once; it expires soon."""

    ticket: str
    expires_at: datetime
    stream_url: str


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
