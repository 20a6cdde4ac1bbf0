"""Attention: each dialogue's entry, the weights that score it, the agent's view of it all."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from models.bounds import ClientTime, Input

Weight = Annotated[float, Field(ge=0, le=10)]
Unit = Annotated[float, Field(ge=0, le=1)]
Scheduler = Literal["priority", "weighted_round_robin"]


class AttentionWeights(Input):
    """How much each signal counts in ``calculate_priority`` (each 0-10; the agent tunes them)."""

    importance: Weight = 2.0
    relationship: Weight = 1.0
    mentioned: Weight = 3.0
    floor: Weight = 5.0
    unread: Weight = 1.0
    deadline: Weight = 3.0
    recency: Weight = 0.5


class DialogueEntry(BaseModel):
    """One dialogue (a chat) as the agent's attention sees it."""

    chat_id: str
    chat_type: Literal["direct", "group"] = "group"
    importance: Unit = 0.5
    relationship_weight: Unit = 0.5
    deadline: datetime | None = None
    mentioned: bool = False
    floor_granted: bool = False
    unread: int = 0
    last_seq: int = 0
    last_interaction: datetime | None = None
    message_importance: Unit = 0.0
    """The highest importance the processing step gave an unread message here."""
    floor_control: bool = False
    requested: bool = False
    """A hosted agent asked for the floor here and waits for it."""
    context_seq: int | None = None
    """A hosted agent's dialogue context is saved through this seq (its last turn here)."""

    def actionable(self) -> bool:
        """Something to attend to: the floor, a mention, unread messages or a deadline."""
        return self.floor_granted or self.mentioned or self.unread > 0 or self.deadline is not None


FOCUS_LOG = 20


class FocusSwitch(BaseModel):
    at: datetime
    to: str | None


class AttentionState(BaseModel):
    """Inside ``AgentWorkflow``; projected to ``agent_attention_states``."""

    scheduler: Scheduler = "priority"
    weights: AttentionWeights = AttentionWeights()
    entries: dict[str, DialogueEntry] = {}
    focus: str | None = None
    credit: dict[str, float] = {}
    """Smooth weighted round robin's running credit per dialogue."""
    focus_changed_at: datetime | None = None
    recent_focus: list[FocusSwitch] = []
    """The last focus switches, oldest first (at most ``FOCUS_LOG``)."""


class DialogueScore(BaseModel):
    entry: DialogueEntry
    score: float
    parts: dict[str, float] = {}
    """Each signal's weighted share of the score (importance, mentioned, floor, unread,
    deadline, recency, relationship)."""


class AttentionView(BaseModel):
    """``GET /v1/agents/{id}/attention``."""

    agent_id: str
    scheduler: Scheduler
    weights: AttentionWeights
    current_focus: str | None
    dialogues: list[DialogueScore]
    recent_focus: list[FocusSwitch] = []
    turns_per_hour: int | None = None
    """A hosted agent's budget of turns an hour (None: not hosted)."""
    turns_last_hour: int = 0


class DialogueTuning(Input):
    importance: Unit | None = None
    relationship_weight: Unit | None = None
    deadline: ClientTime | None = None


class AttentionUpdate(Input):
    """``PATCH /v1/agents/{id}/attention``: the agent tunes its own attention."""

    scheduler: Scheduler | None = None
    weights: AttentionWeights | None = None
    dialogues: Annotated[dict[str, DialogueTuning], Field(max_length=500)] = {}


class DialogueNotice(BaseModel):
    """What a chat tells a member's agent workflow after a batch (one per agent per batch)."""

    chat_id: str
    chat_type: Literal["direct", "group"]
    new_messages: int = 0
    last_seq: int = 0
    mentioned: bool = False
    interacted: bool = False
    floor: Literal["granted", "released"] | None = None
    floor_control: bool = False
    importance: float = 0.0
    read_up_to: int | None = None
    at: datetime

    def urgent(self) -> bool:
        """It must not wait for the notice interval: a floor change or a mention."""
        return self.floor is not None or self.mentioned


def newest_told(notices: dict[str, DialogueNotice]) -> int:
    """The newest message seq a batch's notices tell of (0: none tells of a message; a
    floor change or a read mark alone)."""
    return max((n.last_seq for n in notices.values()), default=0)


def fold_readings(
    notices: dict[str, DialogueNotice], senders: dict[int, str], contexts: dict
) -> None:
    """The processing step's reading of each message (``contexts``: seq -> its
    ``MessageContext``) reaches the notices of the members other than its sender
    (``senders``: seq -> who sent it): the highest importance, and a mention."""
    for seq, context in contexts.items():
        sender = senders.get(seq)
        if sender is None:
            continue
        for agent_id, notice in notices.items():
            if agent_id == sender:
                continue
            notice.importance = max(notice.importance, context.importance)
            notice.mentioned = notice.mentioned or agent_id in context.mentions
