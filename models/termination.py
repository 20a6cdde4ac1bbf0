"""When a round ends: end conditions combined with AND and OR (pure, no Temporal).

A chat's floor may carry a termination expression, as AutoGen's and MAF's termination
conditions combine with ``&`` and ``|``::

    max_turns(12) or (text("DONE") and max_messages(40))

The conditions read the round so far: ``max_turns(n)`` turns ended, ``max_messages(n)``
messages posted, ``tokens(n)`` model tokens the hosted agents' posts reported,
``text("...")`` a message that said it (case-insensitive; it stays said for the
round), ``idle(seconds)`` no post, request or grant for that long. ``and`` binds
tighter than ``or``; ``&`` and ``|`` are the same words. The owner's stop
(``POST .../floor/stop``) ends a round whatever the expression says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CONDITIONS = ("max_turns", "max_messages", "tokens", "text", "idle")
MAX_LENGTH = 500

_TOKEN = re.compile(
    r"""\s*(?:(?P<word>[A-Za-z_]+)|(?P<number>\d+(?:\.\d+)?)|(?P<string>"[^"]{1,100}")"""
    r"""|(?P<punct>[()&|,]))"""
)


class TerminationError(ValueError):
    """An expression that cannot be parsed; the message says where."""


@dataclass(frozen=True)
class Condition:
    name: str
    arg: float | str

    def __str__(self) -> str:
        arg = f'"{self.arg}"' if isinstance(self.arg, str) else f"{self.arg:g}"
        return f"{self.name}({arg})"


@dataclass(frozen=True)
class Both:
    parts: tuple


@dataclass(frozen=True)
class Either:
    parts: tuple


@dataclass
class RoundSoFar:
    """What the conditions read: the round's counts, and when it last moved."""

    turns: int = 0
    messages: int = 0
    tokens: int = 0
    said: list[str] = field(default_factory=list)
    last_activity_at: datetime | None = None


def parse(source: str):
    """The expression as a tree of ``Condition``, ``Both`` and ``Either``."""
    if len(source) > MAX_LENGTH:
        raise TerminationError(f"at most {MAX_LENGTH} characters")
    tokens = _tokenise(source)
    tree, at = _either(tokens, 0)
    if at != len(tokens):
        raise TerminationError(f"unexpected {tokens[at][1]!r} at token {at + 1}")
    return tree


def conditions(tree) -> list[Condition]:
    """Every condition in the expression, in order."""
    if isinstance(tree, Condition):
        return [tree]
    return [c for part in tree.parts for c in conditions(part)]


def fired(tree, so_far: RoundSoFar, now: datetime) -> list[Condition] | None:
    """The conditions that make the expression true now (None: it is not)."""
    if isinstance(tree, Condition):
        return [tree] if _holds(tree, so_far, now) else None
    if isinstance(tree, Both):
        found: list[Condition] = []
        for part in tree.parts:
            part_fired = fired(part, so_far, now)
            if part_fired is None:
                return None
            found += part_fired
        return found
    for part in tree.parts:
        part_fired = fired(part, so_far, now)
        if part_fired is not None:
            return part_fired
    return None


def idle_deadline(tree, so_far: RoundSoFar) -> datetime | None:
    """The earliest moment an ``idle`` condition comes true (a timer for the workflow)."""
    if so_far.last_activity_at is None:
        return None
    idles = [c.arg for c in conditions(tree) if c.name == "idle"]
    if not idles:
        return None
    return so_far.last_activity_at + timedelta(seconds=float(min(idles)))


def texts(tree) -> list[str]:
    return [str(c.arg) for c in conditions(tree) if c.name == "text"]


def _holds(condition: Condition, so_far: RoundSoFar, now: datetime) -> bool:
    arg = condition.arg
    if condition.name == "max_turns":
        return so_far.turns >= arg
    if condition.name == "max_messages":
        return so_far.messages >= arg
    if condition.name == "tokens":
        return so_far.tokens >= arg
    if condition.name == "text":
        return str(arg).lower() in so_far.said
    last = so_far.last_activity_at
    return last is not None and now - last >= timedelta(seconds=float(arg))


def _tokenise(source: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(source):
        if source[at:].strip() == "":
            break
        match = _TOKEN.match(source, at)
        if match is None:
            raise TerminationError(f"cannot read {source[at:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.lower() in ("and", "or"):
            kind, value = "punct", "&" if value.lower() == "and" else "|"
        tokens.append((kind, value))
        at = match.end()
    if not tokens:
        raise TerminationError("an empty expression")
    return tokens


def _either(tokens, at):
    parts = []
    part, at = _both(tokens, at)
    parts.append(part)
    while at < len(tokens) and tokens[at] == ("punct", "|"):
        part, at = _both(tokens, at + 1)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else Either(tuple(parts))), at


def _both(tokens, at):
    parts = []
    part, at = _one(tokens, at)
    parts.append(part)
    while at < len(tokens) and tokens[at] == ("punct", "&"):
        part, at = _one(tokens, at + 1)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else Both(tuple(parts))), at


def _one(tokens, at):
    if at >= len(tokens):
        raise TerminationError("the expression ends where a condition was expected")
    kind, value = tokens[at]
    if (kind, value) == ("punct", "("):
        tree, at = _either(tokens, at + 1)
        if at >= len(tokens) or tokens[at] != ("punct", ")"):
            raise TerminationError("a '(' is not closed")
        return tree, at + 1
    if kind != "word":
        raise TerminationError(f"expected a condition at token {at + 1}, found {value!r}")
    name = value.lower()
    if name not in CONDITIONS:
        raise TerminationError(f"unknown condition {value!r} (one of {', '.join(CONDITIONS)})")
    if (
        at + 3 >= len(tokens)
        or tokens[at + 1] != ("punct", "(")
        or tokens[at + 3] != ("punct", ")")
    ):
        raise TerminationError(f"{name} takes one argument in parentheses")
    arg_kind, arg = tokens[at + 2]
    return Condition(name, _argument(name, arg_kind, arg)), at + 4


def _argument(name: str, kind: str, raw: str) -> float | str:
    if name == "text":
        if kind != "string":
            raise TerminationError('text takes a quoted text: text("DONE")')
        return raw[1:-1].lower()
    if kind != "number":
        raise TerminationError(f"{name} takes a number")
    value = float(raw)
    if name == "idle":
        if not 1 <= value <= 3600:
            raise TerminationError("idle takes 1 to 3600 seconds")
        return value
    if value != int(value) or not 1 <= value <= 10_000_000:
        raise TerminationError(f"{name} takes a whole number from 1")
    return int(value)
