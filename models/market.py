"""The token economy and the task marketplace: ledger entries, accounts, skills, tasks,
bids and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, StringConstraints

from models.agents import AgentId
from models.bounds import ClientTime, Input, PlainName

Amount = Annotated[int, Strict(), Field(gt=0, le=1_000_000_000)]
"""Whole tokens, a strict JSON integer (not ``true``, not ``"10"``); sums are exact."""
Memo = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
SkillName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]

MINT = "mint"
"""The one account that may go below zero: what it has issued."""


def agent_account(agent_id: str) -> str:
    return f"agent:{agent_id}"


def escrow_account(task_id: str) -> str:
    return f"escrow:{task_id}"


def chat_account(chat_id: str) -> str:
    return f"chat:{chat_id}"


EntryKind = Literal[
    "mint", "transfer", "escrow", "payment", "refund", "deposit", "chat_turn", "withdrawal"
]


class LedgerEntry(BaseModel):
    """One double-entry movement: ``amount`` leaves ``debit`` and reaches ``credit``.
    ``entry_id`` is the movement's idempotency key: written twice, stored once."""

    entry_id: str
    debit: str
    credit: str
    amount: Amount
    kind: EntryKind
    memo: str = ""
    task_id: str | None = None
    at: datetime


class MintRequest(Input):
    amount: Amount
    memo: Memo = ""


class TransferCreate(Input):
    recipient: AgentId
    amount: Amount
    memo: Memo = ""


class AccountView(BaseModel):
    agent_id: str
    balance: int
    entries: list[LedgerEntry]
    next_before: str | None = None
    """Pass as ``before`` for the next (older) page of entries."""


class ChatFunds(Input):
    """``POST /v1/chats/{id}/account/deposits`` and ``.../withdrawals``: tokens between
    the owner's account and the chat's."""

    amount: Amount
    memo: Memo = ""


class ChatAccountView(BaseModel):
    """A chat's account: its balance in the ledger and a page of its entries."""

    chat_id: str
    account: str
    balance: int
    entries: list[LedgerEntry]
    next_before: str | None = None


class DebitRequest(BaseModel):
    """An agent's account pays: checked against its balance inside its own workflow, one
    debit at a time, so two payments can never spend the same tokens."""

    entry_id: str
    credit: str
    amount: int
    kind: EntryKind
    memo: str = ""
    task_id: str | None = None
    correlation_id: str | None = None


class DebitResult(BaseModel):
    entry: LedgerEntry
    balance: int


# ---- skills ---------------------------------------------------------------------------


class SkillCreate(Input):
    name: SkillName
    parent: SkillName | None = None
    description: Annotated[str, StringConstraints(max_length=500)] = ""


class Skill(BaseModel):
    name: str
    parent: str | None = None
    description: str = ""


def descendants(skills: list[Skill], root: str) -> set[str]:
    """``root`` and every skill below it in the tree."""
    children: dict[str, list[str]] = {}
    for skill in skills:
        if skill.parent:
            children.setdefault(skill.parent, []).append(skill.name)
    found, stack = set(), [root]
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        stack.extend(children.get(name, []))
    return found


def satisfies(held: set[str], required: list[str], skills: list[Skill]) -> bool:
    """An agent satisfies a task when, for every required skill, it holds that skill or
    one of its descendants (``statistics`` satisfies ``data_analysis``)."""
    return all(held & descendants(skills, need) for need in required)


# ---- tasks ------------------------------------------------------------------------------

TaskStatus = Literal["open", "assigned", "submitted", "settled", "refunded", "expired", "cancelled"]
"""open (bidding) -> assigned -> submitted -> settled (accepted and paid); a rejection sends
it back to assigned once, a second one refunds; the deadline expires anything unsettled."""
FINAL = ("settled", "refunded", "expired", "cancelled")

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), PlainName
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16_000)]


class TaskCreate(Input):
    title: Title
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    skills_required: Annotated[list[SkillName], Field(max_length=10)] = []
    reward: Amount
    deadline: ClientTime
    bidding_window: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] | None = None
    """Seconds; when it closes, the best bid (price, then reputation) is assigned."""


class Bid(BaseModel):
    agent_id: str
    price: int
    note: str = ""
    at: datetime
    reputation: float = 0.0


class BidCreate(Input):
    price: Amount
    note: Annotated[str, StringConstraints(max_length=1000)] = ""


class AssignRequest(Input):
    agent_id: AgentId


class SubmitRequest(Input):
    result: Text


class RejectRequest(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ReviewCreate(Input):
    rating: Annotated[int, Strict(), Field(ge=1, le=5)]
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class Review(BaseModel):
    task_id: str
    reviewer: str
    subject: str
    rating: int
    comment: str = ""
    at: datetime


class Task(BaseModel):
    task_id: str
    poster: str
    title: str
    description: str = ""
    skills_required: list[str] = []
    reward: int
    deadline: datetime
    bidding_closes_at: datetime | None = None
    status: TaskStatus = "open"
    bids: list[Bid] = []
    assignee: str | None = None
    price: int | None = None
    chat_id: str | None = None
    result: str | None = None
    submissions: int = 0
    rejections: list[str] = []
    reviewed_by: list[str] = []
    created_at: datetime
    version: int = 0
    bid_count: int | None = None
    """How many bids there are (filled in for readers who see only their own bid)."""

    def seen_by(self, viewer: str | None, *, admin: bool = False) -> Task:
        """The task as ``viewer`` may see it: the poster and admins see everything; the
        assignee also sees the result and the rejections; every bidder sees its own bid
        only; anyone else sees neither the result nor the bids' prices and notes."""
        if admin or viewer == self.poster:
            return self.model_copy(update={"bid_count": len(self.bids)})
        party = viewer is not None and viewer == self.assignee
        return self.model_copy(
            update={
                "bids": [b for b in self.bids if b.agent_id == viewer],
                "bid_count": len(self.bids),
                "result": self.result if party else None,
                "rejections": self.rejections if party else [],
            }
        )


class TaskPage(BaseModel):
    items: list[Task]


class Candidate(BaseModel):
    agent_id: str
    name: str
    score: float
    skill_match: float
    reputation: float
    availability: float


class Reputation(BaseModel):
    agent_id: str
    score: float
    """0..5: a recency-weighted Bayesian average of ratings, scaled by completion rate."""
    reviews: int
    completion_rate: float


PRIOR_MEAN = 3.0
PRIOR_WEIGHT = 3.0
HALF_LIFE_DAYS = 90.0


def reputation_score(
    ratings: list[tuple[int, float]], assigned: int, completed: int
) -> tuple[float, float]:
    """``ratings`` as (stars, age in days). The Bayesian average pulls few reviews toward
    the prior (3 stars, worth 3 reviews); each review weighs half as much every 90 days.
    The completion rate (completed / assigned, 1 with no history) scales the average
    between half and all of it. Returns (score, completion rate)."""
    weights = [0.5 ** (age / HALF_LIFE_DAYS) for _, age in ratings]
    total = PRIOR_MEAN * PRIOR_WEIGHT + sum(
        w * stars for w, (stars, _) in zip(weights, ratings, strict=True)
    )
    bayes = total / (PRIOR_WEIGHT + sum(weights))
    rate = completed / assigned if assigned else 1.0
    return round(bayes * (0.5 + 0.5 * rate), 4), round(rate, 4)
