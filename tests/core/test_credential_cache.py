"""The API's credential cache (``api.credentials``): a revoked token is never answered
live from memory once its revocation was heard, however reads and revocations interleave."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.credentials import CredentialCache


class Store:
    """The ``credentials`` collection as the cache sees it: token id -> subject, revoked."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.subject_of = dict(tokens)
        self.revoked: set[str] = set()
        self.reads = 0
        self.during_read = None  # something that happens between the read and its answer

    async def is_live(self, token_id: str, subject: str, role: str) -> bool:
        self.reads += 1
        live = token_id not in self.revoked and self.subject_of.get(token_id) == subject
        if self.during_read is not None:
            happen, self.during_read = self.during_read, None
            happen()
        return live

    def revoke(self, subject: str) -> None:
        self.revoked |= {t for t, s in self.subject_of.items() if s == subject}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(coroutine):
    return asyncio.run(coroutine)


async def _checks(cache: CredentialCache, store: Store, token: str, n: int) -> list[bool]:
    subject = store.subject_of[token]
    return [await cache.is_live(token, subject, "agent", store.is_live) for _ in range(n)]


def test_a_heard_cache_reads_each_token_once_until_its_time_to_live():
    clock, store = Clock(), Store({"t1": "ada"})
    cache = CredentialCache(ttl=60, clock=clock)
    cache.trust(True)
    assert _run(_checks(cache, store, "t1", 50)) == [True] * 50
    assert store.reads == 1 and cache.hits == 49
    clock.now = 61
    _run(_checks(cache, store, "t1", 1))
    assert store.reads == 2


def test_an_unheard_cache_reads_the_store_every_time():
    store = Store({"t1": "ada"})
    cache = CredentialCache(ttl=60, clock=Clock())
    assert _run(_checks(cache, store, "t1", 5)) == [True] * 5
    assert store.reads == 5
    cache.trust(True)
    _run(_checks(cache, store, "t1", 3))
    cache.trust(False)  # the connection dropped: a revocation may go unheard
    _run(_checks(cache, store, "t1", 3))
    assert store.reads == 5 + 1 + 3


def test_a_revocation_heard_is_refused_at_once_and_a_rotation_keeps_the_new_token():
    store = Store({"old": "ada", "new": "ada", "bob": "bob"})
    cache = CredentialCache(ttl=60, clock=Clock())
    cache.trust(True)
    for token in ("old", "new", "bob"):
        _run(_checks(cache, store, token, 2))
    store.revoked.add("old")  # the rotation's store write, then its announcement
    assert cache.revoked("ada", "agent") == 2
    assert _run(_checks(cache, store, "old", 3)) == [False] * 3
    assert _run(_checks(cache, store, "new", 1)) == [True]
    reads = store.reads
    _run(_checks(cache, store, "bob", 1))  # another subject's entry stands
    assert store.reads == reads


def test_a_read_that_raced_a_revocation_is_not_kept():
    store = Store({"t1": "ada"})
    cache = CredentialCache(ttl=60, clock=Clock())
    cache.trust(True)

    def revocation() -> None:
        store.revoke("ada")
        cache.revoked("ada", "agent")

    store.during_read = revocation  # the read saw t1 live just before it was revoked
    assert _run(_checks(cache, store, "t1", 1)) == [True]
    assert _run(_checks(cache, store, "t1", 1)) == [False]


def test_the_cache_holds_at_most_its_size():
    store = Store({f"t{i}": f"agent{i}" for i in range(100)})
    cache = CredentialCache(ttl=60, size=10, clock=Clock())
    cache.trust(True)
    for i in range(100):
        _run(_checks(cache, store, f"t{i}", 1))
    assert len(cache) == 10


TOKENS = {"a1": "ada", "a2": "ada", "b1": "bob", "c1": "cy"}
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("check"), st.sampled_from(sorted(TOKENS))),
        st.tuples(st.just("check_racing"), st.sampled_from(sorted(TOKENS))),
        st.tuples(st.just("revoke"), st.sampled_from(["ada", "bob", "cy"])),
        st.tuples(st.just("trust"), st.booleans()),
        st.tuples(st.just("tick"), st.floats(min_value=0, max_value=40)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_no_check_that_starts_after_a_heard_revocation_answers_live(steps):
    """Every revocation is announced after its store write (the workflow's order); a
    check that starts after the announcement answers what the store holds, whatever
    was cached, raced or dropped before."""
    clock, store = Clock(), Store(TOKENS)
    cache = CredentialCache(ttl=60, size=3, clock=clock)

    async def play() -> None:
        for step, arg in steps:
            if step in ("check", "check_racing"):
                subject = TOKENS[arg]
                if step == "check_racing":

                    def revocation(subject=subject) -> None:
                        store.revoke(subject)
                        cache.revoked(subject, "agent")

                    store.during_read = revocation
                    await cache.is_live(arg, subject, "agent", store.is_live)
                    if store.during_read is not None:
                        # answered from memory: no read to race, so the revocation comes
                        # after this check (left pending, it raced a later, plain check)
                        store.during_read = None
                        revocation()
                    continue
                answer = await cache.is_live(arg, subject, "agent", store.is_live)
                assert answer == (arg not in store.revoked)
            elif step == "revoke":
                store.revoke(arg)
                cache.revoked(arg, "agent")
            elif step == "trust":
                cache.trust(arg)
            else:
                clock.now += arg

    asyncio.run(play())


class Away(Exception):
    """The store restarting."""


def test_while_the_store_is_away_a_recently_read_id_keeps_its_answer_for_one_ttl_more():
    clock, store = Clock(), Store({"t1": "ada", "t2": "bob"})
    cache = CredentialCache(ttl=60, clock=clock)
    cache.trust(True)
    _run(_checks(cache, store, "t1", 1))

    async def down(token_id: str, subject: str, role: str) -> bool:
        raise Away("the store is restarting")

    def check(token: str, subject: str, away=lambda e: isinstance(e, Away)) -> bool:
        return _run(cache.is_live(token, subject, "agent", down, away))

    clock.now = 100  # past the ttl, within two
    assert check("t1", "ada") is True and cache.stale == 1
    assert check("t1", "eve") is False  # still the subject it was read for
    for token, subject, away in (
        ("t2", "bob", lambda e: True),  # never read here: the store must answer
        ("t1", "ada", lambda e: False),  # another failure than the store away
    ):
        with pytest.raises(Away):
            check(token, subject, away)
    clock.now = 121  # past two ttls: not for ever
    with pytest.raises(Away):
        check("t1", "ada")


def test_a_heard_revocation_is_not_undone_by_the_store_being_away():
    clock, store = Clock(), Store({"t1": "ada"})
    cache = CredentialCache(ttl=60, clock=clock)
    cache.trust(True)
    _run(_checks(cache, store, "t1", 1))
    cache.revoked("ada", "agent")
    clock.now = 70

    async def down(token_id: str, subject: str, role: str) -> bool:
        raise Away("the store is restarting")

    with pytest.raises(Away):
        _run(cache.is_live("t1", "ada", "agent", down, lambda e: True))
