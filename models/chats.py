"""Chats, members, roles and messages: API shapes and the pure access rules."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from models.agents import AgentId
from models.bounds import Input, PlainName, Seq
from models.floor import FloorSettings, Policy

MAX_MEMBERS = 500


class Role(StrEnum):
    """Matrix-style roles; a higher rank includes every right of the lower ones."""

    OWNER = "owner"
    ADMIN = "admin"
    MODERATOR = "moderator"
    MEMBER = "member"
    GUEST = "guest"


RANK = {Role.OWNER: 100, Role.ADMIN: 75, Role.MODERATOR: 50, Role.MEMBER: 10, Role.GUEST: 0}


def a(role: Role | str | None) -> str:
    """The role with its article, for refusals: "an admin", "a member", "a non-member"."""
    word = str(role) if role is not None else "non-member"
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def can_read(role: Role | None) -> bool:
    return role is not None


def can_post(role: Role | None) -> bool:
    return role is not None and RANK[role] >= RANK[Role.MEMBER]


def can_manage(role: Role | None) -> bool:
    """Invite, remove and change roles (below one's own)."""
    return role is not None and RANK[role] >= RANK[Role.ADMIN]


def can_set_role(actor: Role | None, target_current: Role | None, new: Role) -> bool:
    """Admins and the owner change roles strictly below their own, to roles below their own."""
    if not can_manage(actor) or new == Role.OWNER:
        return False
    below = RANK[actor] > RANK[new]
    target_below = target_current is None or RANK[actor] > RANK[target_current]
    return below and target_below


def can_remove(actor_id: str, actor: Role | None, target_id: str, target: Role | None) -> bool:
    if target is None:
        return False
    if actor_id == target_id:
        return target != Role.OWNER  # the owner closes the chat instead of leaving it
    return can_manage(actor) and RANK[actor] > RANK[target]


def direct_chat_id(first: str, second: str, generation: int = 0) -> str:
    """The one open chat of a pair: the same id whoever asks first. Once it is closed, the
    pair's next chat is the next generation (``dm-<hash>-1``, ...). The id is never shown
    to third parties (see ``models.agents.public_view``)."""
    low, high = sorted((first, second))
    base = "dm-" + hashlib.sha256(f"{low}\x00{high}".encode()).hexdigest()[:24]
    return f"{base}-{generation}" if generation else base


ChatType = Literal["direct", "group"]
JoinRule = Literal["invite", "public"]
MessageType = Literal["text", "json", "system"]
Topic = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), PlainName
]


class ChatCreate(Input):
    """``POST /v1/chats``: a direct chat with one other agent, or a group."""

    type: ChatType
    participants: Annotated[list[AgentId], Field(min_length=1, max_length=MAX_MEMBERS)]
    topic: Topic | None = None
    join_rule: JoinRule = "invite"
    speaker_policy: Policy | None = None
    floor: FloorSettings | None = Field(
        default=None,
        description="Turn limits; setting it (or speaker_policy) turns floor control on.",
    )

    @model_validator(mode="after")
    def _shape(self) -> ChatCreate:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("participants must not repeat")
        if self.type == "direct" and len(self.participants) != 1:
            raise ValueError("a direct chat names exactly one other participant")
        return self

    def floor_settings(self) -> FloorSettings | None:
        """The floor settings asked for, or None for a chat without floor control."""
        if self.floor is None and self.speaker_policy is None:
            return None
        settings = self.floor or FloorSettings()
        if self.speaker_policy is not None:
            settings = settings.model_copy(update={"speaker_policy": self.speaker_policy})
        return settings


class MemberAdd(Input):
    agent_id: AgentId
    role: Literal["admin", "moderator", "member", "guest"] = "member"


class MemberUpdate(Input):
    role: Literal["admin", "moderator", "member", "guest"]


class Member(BaseModel):
    agent_id: str
    role: Role
    joined_at: datetime
    hosted: bool = False
    """The agent thinks in Agora (it has a brain): its room's events reach its workflow,
    and its inbox queue gets no copy of them (watch it with an observer stream)."""


class ChatPublic(BaseModel):
    """A chat as its members see it."""

    chat_id: str
    type: ChatType
    topic: str | None = None
    join_rule: JoinRule
    speaker_policy: str | None = None
    created_by: str
    created_at: datetime
    members: list[Member]
    last_seq: int = 0
    closed: bool = False
    version: int = 0


class ChatPage(BaseModel):
    items: list[ChatPublic]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next (older) page."""


class MessagePost(Input):
    """``POST /v1/chats/{id}/messages``."""

    content: Annotated[str, StringConstraints(min_length=1)]
    message_type: MessageType = "text"
    yield_floor: Annotated[bool, Strict()] = Field(
        default=False,
        alias="yield",
        description="Yield the floor with this post: a turn's last message in one call "
        "(409 in a chat without floor control).",
    )

    @model_validator(mode="after")
    def _size(self) -> MessagePost:
        if not self.content.strip():
            raise ValueError("content: must not be blank")
        if self.message_type == "json":
            try:
                json.loads(self.content)
            except ValueError:
                raise ValueError("content: a json message holds one JSON document") from None
        return self


class MessageContext(BaseModel):
    """What the processing step read in a message: used by the recipients' attention."""

    mentions: list[str] = []
    importance: float = Field(default=0.0, ge=0, le=1)
    intent: str = "statement"


class Message(BaseModel):
    """A stored message (``_id`` is ``message_id``, deterministic from chat and seq)."""

    model_config = ConfigDict(populate_by_name=True)

    message_id: str
    chat_id: str
    seq: int
    from_: str = Field(alias="from")
    to: str | None = None
    timestamp: datetime
    message_type: MessageType
    content: str
    is_private: bool
    correlation_id: str | None = None
    langchain_context: MessageContext | None = None


def spread_interval(seconds: float, chat_id: str, spread: float) -> float:
    """``seconds`` scaled by a factor in ``[1 - spread/2, 1 + spread/2)`` that the chat id
    alone decides (the same in every process and every replay), spread evenly over ids:
    chats opened together keep apart. With one interval for all, the trailing notices of
    rooms that started together came due together, every 5 s, and each time the agents'
    workflow tasks for all of them stood in front of every post for about a second."""
    share = int.from_bytes(hashlib.sha256(chat_id.encode()).digest()[:8], "big") / 2**64
    return seconds * (1 - spread / 2 + spread * share)


def message_id_for(chat_id: str, seq: int) -> str:
    return f"{chat_id}:{seq:012d}"


class Posted(BaseModel):
    message_id: str
    seq: int
    floor_yielded: bool = Field(
        default=False,
        description="This post ended the sender's turn: its ``yield``, the turn's message "
        "limit, or the termination text.",
    )


ReceiptStatus = Literal["sent", "delivered", "read"]


class MessagePublic(BaseModel):
    message_id: str
    chat_id: str
    seq: int
    sender: str = Field(validation_alias=AliasChoices("from", "sender"), serialization_alias="from")
    to: str | None = None
    timestamp: datetime
    message_type: MessageType
    content: str
    is_private: bool
    langchain_context: MessageContext | None = None
    receipts: dict[str, ReceiptStatus] | None = Field(
        default=None, description="Per recipient, on the caller's own messages."
    )


class MessagePage(BaseModel):
    items: list[MessagePublic]
    next_after_seq: int | None = None
    next_before_seq: int | None = None
    """Paging back (``before_seq``): the value that asks for the page before this one."""


class ReadMark(Input):
    up_to_seq: Annotated[Seq, Strict()]
