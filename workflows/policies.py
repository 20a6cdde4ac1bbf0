"""Speaker-selection policies: pure, deterministic functions of the floor's state.

Each takes the waiting requests (in arrival order), the chat's members in their fixed
order, the last speaker and a random source (the workflow's seeded ``workflow.random()``)
and names the next speaker, or None when the policy does not choose by itself
(``moderator`` grants by hand; ``llm`` asks a model in an activity and falls back to
``fifo``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from models.floor import FloorRequest

Selector = Callable[[Sequence[FloorRequest], Sequence[str], str | None, random.Random], str | None]


def fifo(queue, members, last_speaker, rng) -> str | None:
    """The longest waiting request."""
    return min(queue, key=lambda r: r.order).agent_id if queue else None


def priority(queue, members, last_speaker, rng) -> str | None:
    """The highest priority; among equals, the longest waiting."""
    return min(queue, key=lambda r: (-r.priority, r.order)).agent_id if queue else None


def after(members: Sequence[str], last_speaker: str | None) -> list[str]:
    """The chat's fixed order, going round from the member after the last speaker (from
    the first when the last speaker is gone); the last speaker comes last."""
    order = list(members)
    start = order.index(last_speaker) + 1 if last_speaker in order else 0
    return order[start:] + order[:start]


def round_robin(queue, members, last_speaker, rng) -> str | None:
    """The next member after the last speaker, in the chat's fixed order, who asked."""
    if not queue:
        return None
    asking = {r.agent_id for r in queue}
    for candidate in after(members, last_speaker):
        if candidate in asking:
            return candidate
    return fifo(queue, members, last_speaker, rng)  # requesters outside the order (none)


def random_pick(queue, members, last_speaker, rng) -> str | None:
    """A requester drawn uniformly by the workflow's seeded random source."""
    if not queue:
        return None
    ordered = sorted(queue, key=lambda r: r.order)
    return ordered[rng.randrange(len(ordered))].agent_id


def by_hand(queue, members, last_speaker, rng) -> str | None:
    """The moderator grants by hand: the policy itself picks nobody."""
    return None


SELECTORS: dict[str, Selector] = {
    "fifo": fifo,
    "priority": priority,
    "round_robin": round_robin,
    "random": random_pick,
    "moderator": by_hand,
    "llm": fifo,  # what the workflow falls back to when the model names nobody valid
}

AUTOMATIC = frozenset({"fifo", "priority", "round_robin", "random"})


def valid_pick(pick: str | None, queue: Sequence[FloorRequest]) -> str | None:
    """A model's pick only if it names a waiting requester (else the caller falls back)."""
    if pick is None:
        return None
    names = {r.agent_id for r in queue}
    cleaned = pick.strip().strip("\"'.` ")
    return cleaned if cleaned in names else None
