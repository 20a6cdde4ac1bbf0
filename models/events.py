"""The event envelope and the typed payloads: the catalogue of what goes over the bus."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from models.bounds import Input
from models.chats import ChatPublic, Message
from models.floor import FloorSettings

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


def _absent(value: object) -> bool:
    return value is None


def optional() -> Any:
    """A payload field that is left out of the event when it has no value (None)."""
    return Field(default=None, exclude_if=_absent)


def _as_published(schema: dict[str, Any], cls: type) -> None:
    """A payload's JSON schema as clients get it: named by its event type, and open to
    fields a later version adds (a reader ignores what it does not know)."""
    schema.pop("additionalProperties", None)
    if "TYPE" in vars(cls):
        schema["x-event-type"] = cls.TYPE


class EventPayload(BaseModel):
    """The payload of one event type (``TYPE``): every event a workflow emits is one of
    the classes below, so this module is the catalogue of what goes over the bus. On the
    bus a payload is its JSON (``as_dict``); consumers read it as a plain object, and a
    consumer that reads one back into its class ignores fields it does not know
    (``model_validate(..., extra="ignore")``); made here, an unknown field is an error."""

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="forbid", json_schema_extra=_as_published
    )

    TYPE: ClassVar[str]

    @property
    def type(self) -> str:
        return self.TYPE

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ---- agents -------------------------------------------------------------------------


class AgentIntroduced(EventPayload):
    TYPE = "agent.introduced"
    agent_id: str
    name: str
    status: str


class AgentStatusChanged(EventPayload):
    TYPE = "agent.status_changed"
    agent_id: str
    old_status: str
    new_status: str
    online_status: bool


class AgentRetired(EventPayload):
    TYPE = "agent.retired"
    agent_id: str


class AgentTokenRotated(EventPayload):
    TYPE = "agent.token_rotated"
    agent_id: str


class AgentFocusChanged(EventPayload):
    """The dialogue the agent's attention turned to (``to``; None: none)."""

    TYPE = "agent.focus_changed"
    agent_id: str
    from_: str | None = Field(alias="from")
    to: str | None


class AgentBudgetExhausted(EventPayload):
    TYPE = "agent.budget_exhausted"
    agent_id: str
    turns_per_hour: int


class AgentReplyFailed(EventPayload):
    """A hosted agent could not answer in a chat (``chat_id``) or do a task (``task_id``)."""

    TYPE = "agent.reply_failed"
    agent_id: str
    chat_id: str | None = optional()
    task_id: str | None = optional()


REVOKED = "credentials.revoked"
"""The event every API process hears (``bus.watch_revocations``): a subject's earlier
tokens were revoked in the store (a rotation or a retirement), so no cached check of
them may stand. It names the subject, never a token or its id."""


class CredentialsRevoked(EventPayload):
    TYPE = REVOKED
    subject: str
    role: str = "agent"


# ---- chats and messages -------------------------------------------------------------


class MessageSent(EventPayload):
    TYPE = "message.sent"
    message: Message


class ChatCreated(EventPayload):
    TYPE = "chat.created"
    chat: ChatPublic


class ChatMemberJoined(EventPayload):
    TYPE = "chat.member_joined"
    chat_id: str
    agent_id: str
    role: str
    by: str


class ChatMemberLeft(EventPayload):
    TYPE = "chat.member_left"
    chat_id: str
    agent_id: str
    by: str


class ChatRoleChanged(EventPayload):
    """``old_role`` is ``previous`` when a leaving owner's heir takes the chat."""

    TYPE = "chat.role_changed"
    chat_id: str
    agent_id: str
    old_role: str
    new_role: str
    by: str


class ChatClosed(EventPayload):
    TYPE = "chat.closed"
    chat_id: str
    by: str


class ChatFloorSettingsChanged(EventPayload):
    TYPE = "chat.floor_settings_changed"
    chat_id: str
    settings: FloorSettings
    by: str


class FloorEvent(EventPayload):
    """An event of a chat's floor (``workflows.floor``) or of its account."""

    chat_id: str


class ChatRoundStarted(FloorEvent):
    TYPE = "chat.round_started"
    round: int
    by: str


class ChatRoundEnded(FloorEvent):
    """``conditions``: which of the termination expression's conditions fired."""

    TYPE = "chat.round_ended"
    round: int
    reason: str
    turns: int
    conditions: list[str] | None = optional()


class ChatFloorRequested(FloorEvent):
    """``standing``: asked with the post that ended the asker's turn."""

    TYPE = "chat.floor_requested"
    agent_id: str
    priority: int
    position: int | None
    standing: bool | None = optional()


class ChatFloorWithdrawn(FloorEvent):
    TYPE = "chat.floor_withdrawn"
    agent_id: str


class ChatFloorGranted(FloorEvent):
    TYPE = "chat.floor_granted"
    agent_id: str
    policy: str
    reason: str
    request_reason: str | None
    priority: int
    round: int
    turn: int
    turn_ends_at: str
    max_messages: int | None


class ChatFloorReleased(FloorEvent):
    """The turn's figures (``turn_seconds`` and the model's share, None when the model
    reported none) are there when the turn was recorded, and left out when it was not."""

    TYPE = "chat.floor_released"
    agent_id: str | None
    reason: str
    round: int
    turn_seconds: float | None = None
    model_seconds: float | None = None
    overhead_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.turn_seconds is None:
            for key in ("turn_seconds", "model_seconds", "overhead_seconds"):
                del out[key]
        return out


class ChatFloorExpired(ChatFloorReleased):
    TYPE = "chat.floor_expired"


class ChatTurnPaid(FloorEvent):
    TYPE = "chat.turn_paid"
    agent_id: str
    round: int
    tokens: int
    amount: int
    balance: int
    entry_id: str


class ChatAccountMoved(FloorEvent):
    """Tokens into or out of the chat's account, by its owner; ``balance`` after."""

    by: str
    amount: int
    balance: int
    entry_id: str


class ChatAccountFunded(ChatAccountMoved):
    TYPE = "chat.account_funded"


class ChatAccountWithdrawn(ChatAccountMoved):
    TYPE = "chat.account_withdrawn"


# ---- tasks --------------------------------------------------------------------------


class TaskEvent(EventPayload):
    """Every task event names the task, its title and its status after the change."""

    task_id: str
    title: str
    status: str


class TaskPosted(TaskEvent):
    TYPE = "task.posted"
    reward: int


class TaskBidPlaced(TaskEvent):
    TYPE = "task.bid_placed"
    agent_id: str
    price: int


class TaskBidWithdrawn(TaskEvent):
    TYPE = "task.bid_withdrawn"
    agent_id: str


class TaskAssigned(TaskEvent):
    """``price`` goes to the poster and the assignee only; the other bidders learn who."""

    TYPE = "task.assigned"
    agent_id: str
    price: int | None = optional()


class TaskSubmitted(TaskEvent):
    TYPE = "task.submitted"
    submissions: int


class TaskAccepted(TaskEvent):
    TYPE = "task.accepted"


class TaskRejected(TaskEvent):
    TYPE = "task.rejected"
    reason: str | None
    rejections: int


class TaskCancelled(TaskEvent):
    TYPE = "task.cancelled"


class TaskExpired(TaskEvent):
    TYPE = "task.expired"


class TaskSettled(TaskEvent):
    TYPE = "task.settled"
    paid: int
    refunded: int


def catalogue() -> dict[str, type[EventPayload]]:
    """Every event type a workflow emits, with its payload class (the API publishes their
    schemas in its OpenAPI, ``api.routes.events.document_events``)."""
    found: dict[str, type[EventPayload]] = {}
    todo = list(EventPayload.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "TYPE" in vars(cls):
            found[cls.TYPE] = cls
    return dict(sorted(found.items()))


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
