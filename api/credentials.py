"""Which token ids are live, without a store read per request.

Every JWT this server signs carries an id (``jti``) that must still be live in
``credentials``. A process remembers what it read, for at most ``ttl`` seconds and at
most ``size`` ids, and forgets a subject's ids the moment a revocation for it arrives
over the bus (``bus.watch_revocations``). While that watch is not connected, nothing is
remembered: a revocation the process cannot hear about is never outlived by the cache.
While the store is away, an id read within the last two times ``ttl`` keeps its answer
(a heard revocation has dropped it already), so posts go on through a store restart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Lookup = Callable[[str, str, str], Awaitable[bool]]


@dataclass
class _Entry:
    subject: str
    role: str
    live: bool
    until: float


@dataclass
class CredentialCache:
    """Token id -> live, read through ``lookup`` and kept until ``ttl`` or a revocation.

    A read that started before a revocation of its subject is not kept (a per-subject
    generation): it may have seen the token live just before the revocation was written.
    A revoked id is kept as revoked: revocation is never undone."""

    ttl: float
    size: int = 10_000
    clock: Clock = time.monotonic
    trusted: bool = False
    """Whether revocations are being heard; until then every check reads the store."""
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _generations: dict[tuple[str, str], int] = field(default_factory=dict)
    _epoch: int = 0
    reads: int = 0
    """Checks answered by a store read (``/metrics``: ``agora_credential_checks``)."""
    hits: int = 0
    """Checks answered from memory."""
    stale: int = 0
    """Checks answered from memory past ``ttl`` because the store was away."""

    async def is_live(
        self,
        token_id: str,
        subject: str,
        role: str,
        lookup: Lookup,
        away: Callable[[Exception], bool] = lambda _: False,
    ) -> bool:
        """Whether the id is live: from memory within ``ttl``, else from ``lookup``; when
        ``lookup`` fails and ``away`` says the store is unavailable, from memory for one
        ``ttl`` more."""
        entry = self._entries.get(token_id)
        now = self.clock()
        if entry is not None and entry.until > now and self.trusted:
            self._entries.move_to_end(token_id)
            self.hits += 1
            return entry.live and entry.subject == subject and entry.role == role
        started = self._moment(subject, role)
        self.reads += 1
        try:
            live = await lookup(token_id, subject, role)
        except Exception as exc:
            # the store is away: an id read within the last two times ``ttl`` and not
            # revoked since (a heard revocation drops it) keeps its answer, so a post
            # while the store restarts is still taken; a first check still needs the store
            if not (
                away(exc) and entry is not None and self.trusted and now < entry.until + self.ttl
            ):
                raise
            self.stale += 1
            return entry.live and entry.subject == subject and entry.role == role
        if self.trusted and self._moment(subject, role) == started:
            self._remember(token_id, _Entry(subject, role, live, self.clock() + self.ttl))
        return live

    def revoked(self, subject: str, role: str) -> int:
        """Forget every id of ``subject`` (a rotation or a retirement was stored); the
        next check of each reads the store again. Returns how many were forgotten."""
        key = (subject, role)
        self._generations[key] = self._generations.get(key, 0) + 1
        gone = [tid for tid, e in self._entries.items() if (e.subject, e.role) == key]
        for token_id in gone:
            del self._entries[token_id]
        return len(gone)

    def trust(self, heard: bool) -> None:
        """The revocation watch connected (``True``) or lost its connection (``False``):
        either way what was remembered may have missed a revocation, so it is dropped."""
        self._entries.clear()
        self._epoch += 1
        self.trusted = heard

    def _moment(self, subject: str, role: str) -> tuple[bool, int, int]:
        return self.trusted, self._epoch, self._generations.get((subject, role), 0)

    def __len__(self) -> int:
        return len(self._entries)

    def _remember(self, token_id: str, entry: _Entry) -> None:
        self._entries[token_id] = entry
        self._entries.move_to_end(token_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
