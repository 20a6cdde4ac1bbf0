"""Attention scoring and scheduling: pure, deterministic code (no Temporal in here)."""

from __future__ import annotations

import math
from datetime import datetime

from models.attention import AttentionState, AttentionWeights, DialogueEntry


def priority_parts(
    entry: DialogueEntry, weights: AttentionWeights, now: datetime
) -> dict[str, float]:
    """Each signal's weighted share of a dialogue's score, each signal scaled to about 0..1
    (the console draws them as the parts of the bar)."""
    urgency = 0.0
    if entry.deadline is not None:
        hours_left = (entry.deadline - now).total_seconds() / 3600
        urgency = 1.0 if hours_left <= 0 else 1.0 / (1.0 + hours_left)
    recency = 0.0
    if entry.last_interaction is not None:
        minutes = max((now - entry.last_interaction).total_seconds() / 60, 0.0)
        recency = math.exp(-minutes / 30)
    return {
        "importance": weights.importance * max(entry.importance, entry.message_importance),
        "relationship": weights.relationship * entry.relationship_weight,
        "mentioned": weights.mentioned * (1.0 if entry.mentioned else 0.0),
        "floor": weights.floor * (1.0 if entry.floor_granted else 0.0),
        "unread": weights.unread * min(math.log1p(entry.unread) / math.log(11), 1.0),
        "deadline": weights.deadline * urgency,
        "recency": weights.recency * recency,
    }


def calculate_priority(entry: DialogueEntry, weights: AttentionWeights, now: datetime) -> float:
    """A dialogue's score: the sum of its parts, added in the same order as always (a
    score decides the focus, so a replay must compute it to the same bit)."""
    return sum(priority_parts(entry, weights, now).values())


def scores(state: AttentionState, now: datetime) -> dict[str, float]:
    return {
        chat_id: calculate_priority(entry, state.weights, now)
        for chat_id, entry in state.entries.items()
    }


def pick_priority(candidates: dict[str, float]) -> str | None:
    """The highest score; ties go to the smaller chat id (never to chance)."""
    if not candidates:
        return None
    return min(candidates, key=lambda chat_id: (-candidates[chat_id], chat_id))


def pick_weighted_round_robin(candidates: dict[str, float], credit: dict[str, float]) -> str | None:
    """Smooth weighted round robin: each pick adds every weight to its credit, takes the
    largest credit and charges it the total. A dialogue of weight w among a total W is
    picked about w/W of the time and never waits more than about W/w picks: no starvation."""
    if not candidates:
        return None
    weights = {chat_id: max(score, 0.01) for chat_id, score in candidates.items()}
    for chat_id in list(credit):
        if chat_id not in weights:
            del credit[chat_id]
    for chat_id, weight in weights.items():
        credit[chat_id] = credit.get(chat_id, 0.0) + weight
    chosen = min(weights, key=lambda chat_id: (-credit[chat_id], chat_id))
    credit[chosen] -= sum(weights.values())
    return chosen


def choose_focus(state: AttentionState, now: datetime, *, keep_waiting: bool = False) -> str | None:
    """The dialogue to work on next, among those with something to attend to. With
    ``keep_waiting``, an agent with nothing to attend to keeps its focus on a floor chat
    where it waits for a turn it asked for (a hosted agent between its turns in a room),
    instead of letting go of it after each turn and taking it back at the next grant."""
    candidates = {
        chat_id: score
        for chat_id, score in scores(state, now).items()
        if state.entries[chat_id].actionable()
    }
    if not candidates and keep_waiting and state.focus is not None:
        current = state.entries.get(state.focus)
        if current is not None and current.floor_control and current.requested:
            return state.focus
    if state.scheduler == "weighted_round_robin":
        return pick_weighted_round_robin(candidates, state.credit)
    return pick_priority(candidates)
