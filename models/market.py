"""The token economy and the task marketplace: ledger entries, accounts, skills, tasks,
bids and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.agents import AgentId

Amount = Annotated[int, Field(gt=0, le=1_000_000_000)]
"""Whole tokens; no fractions, so sums are exact."""
Memo = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
SkillName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]

MINT = "mint"
"""The one account that may go below zero: what it has issued."""


def agent_account(agent_id: str) -> str:
    return f"agent:{agent_id}"


def escrow_account(task_id: str) -> str:
    return f"escrow:{task_id}"


EntryKind = Literal["mint", "transfer", "escrow", "payment", "refund"]


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


class MintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    memo: Memo = ""


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: AgentId
    amount: Amount
    memo: Memo = ""


class AccountView(BaseModel):
    agent_id: str
    balance: int
    entries: list[LedgerEntry]
    next_before: str | None = None
    """Pass as ``before`` for the next (older) page of entries."""


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


class SkillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
