"""The audit log: who did or was refused what, to which object, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Outcome = Literal["allowed", "denied", "limited", "rejected", "failed"]
"""allowed: 2xx/3xx; denied: 401, 403, or a hidden object answered as 404; limited: 413
or 429; rejected: any other 4xx (bad input, conflict); failed: 5xx."""


class AuditRecord(BaseModel):
    audit_id: str
    at: datetime
    actor: str
    """``admin``, ``agent:<id>``, ``operator:<id>`` or ``anonymous``."""
    action: str
    """The method and route template: ``POST /v1/chats/{chat_id}/messages``."""
    target: str | None = None
    """The objects the path names: ``chat:<id>``, ``agent:<id>``."""
    outcome: Outcome
    status: int
    reason: str | None = None
    correlation_id: str | None = None
    client: str | None = None
    """The client address of an anonymous caller (whose denials are aggregated)."""
    count: int = 1
    """How many requests this record stands for: repeated anonymous denials from one
    address in one window are one record of their first and one summary of the rest."""


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_before: str | None = None
    """Pass as ``before`` for the next (older) page."""


def outcome_of(status: int, denied: bool) -> Outcome:
    if denied or status in (401, 403):
        return "denied"
    if status in (413, 429):
        return "limited"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "rejected"
    return "allowed"
