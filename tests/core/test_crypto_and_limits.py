"""Pure parts of the security layer: the content cipher, the token codec, token buckets."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.limits import TokenBucket
from core.crypto import ContentCipher, UnknownKey
from core.security import InvalidToken, TokenCodec
from core.settings import Settings


def _key() -> bytes:
    return os.urandom(32)


@settings(max_examples=200)
@given(text=st.text(max_size=2000), context=st.text(min_size=1, max_size=80))
def test_sealed_content_opens_to_itself_and_never_shows_it(text, context):
    cipher = ContentCipher({"k1": _key()}, "k1")
    sealed = cipher.seal(text, context)
    assert sealed["kid"] == "k1"
    if len(text.encode()) >= 4:
        assert text.encode() not in sealed["ct"]
    assert cipher.open(sealed, context) == text


def test_a_ciphertext_moved_to_another_row_does_not_open():
    cipher = ContentCipher({"k1": _key()}, "k1")
    sealed = cipher.seal("meet at noon", "chat-1:000000000001")
    with pytest.raises(ValueError, match="does not open"):
        cipher.open(sealed, "chat-1:000000000002")


def test_keys_rotate_old_rows_still_open_and_a_missing_key_is_named():
    k1, k2 = _key(), _key()
    old = ContentCipher({"k1": k1}, "k1").seal("before", "m1")
    rotated = ContentCipher({"k1": k1, "k2": k2}, "k2")
    new = rotated.seal("after", "m2")
    assert new["kid"] == "k2"
    assert rotated.open(old, "m1") == "before" and rotated.open(new, "m2") == "after"
    with pytest.raises(UnknownKey, match="k1"):
        ContentCipher({"k2": k2}, "k2").open(old, "m1")


def test_cipher_settings_are_checked():
    b64 = base64.b64encode(_key()).decode()
    assert ContentCipher.from_settings(Settings(message_keys={"a": b64})).current == "a"
    with pytest.raises(ValueError, match="AGORA_MESSAGE_KEY_ID"):
        ContentCipher.from_settings(Settings(message_keys={"a": b64, "b": b64}))
    with pytest.raises(ValueError, match="32 bytes"):
        ContentCipher.from_settings(Settings(message_keys={"a": base64.b64encode(b"x").decode()}))
    with pytest.raises(ValueError, match="not among"):
        ContentCipher.from_settings(Settings(message_keys={"a": b64}, message_key_id="z"))


def test_a_token_carries_its_claims_and_other_servers_refuse_it():
    codec = TokenCodec(Settings(token_secret="s" * 40))
    issued = codec.issue("ada", "agent")
    claims = codec.verify(issued.token)
    assert (claims.subject, claims.role, claims.token_id) == ("ada", "agent", issued.token_id)
    for other in (
        Settings(token_secret="t" * 40),
        Settings(token_secret="s" * 40, jwt_audience="another-api"),
        Settings(token_secret="s" * 40, jwt_issuer="another-issuer"),
    ):
        with pytest.raises(InvalidToken):
            TokenCodec(other).verify(issued.token)


def test_a_key_pair_algorithm_without_its_keys_is_refused():
    with pytest.raises(ValueError, match="AGORA_JWT_PRIVATE_KEY_FILE"):
        TokenCodec(Settings(jwt_algorithm="RS256"))


@settings(max_examples=200)
@given(
    rate=st.floats(min_value=0.1, max_value=100),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_a_bucket_never_lets_more_through_than_burst_plus_rate_times_time(rate, burst, gaps):
    bucket = TokenBucket(rate, burst)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        wait = bucket.take("k", now)
        if wait == 0:
            allowed += 1
        else:
            assert wait <= 1 / rate + 1e-9  # one token's worth at most
    assert allowed <= burst + rate * now + 1e-6


def test_a_refused_caller_may_come_back_after_retry_after():
    bucket = TokenBucket(rate=2, burst=1)
    assert bucket.take("k", 0.0) == 0
    wait = bucket.take("k", 0.0)
    assert wait == pytest.approx(0.5)
    assert bucket.take("k", wait) == 0
    assert bucket.take("other", 0.0) == 0  # keys are independent


def test_a_bucket_forgets_the_least_recent_keys_past_its_bound():
    bucket = TokenBucket(rate=1, burst=1, max_keys=3)
    for key in "abcd":
        bucket.take(key, 0.0)
    assert bucket.take("a", 0.0) == 0  # forgotten, so full again
    assert bucket.take("d", 0.0) > 0


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=1, max_value=10_000),
    replicas=st.integers(min_value=1, max_value=16),
)
def test_replicas_together_never_allow_more_than_the_limit(rate, burst, replicas):
    """N shares taken at once allow at most the burst (and at least one each)."""
    shares = [TokenBucket.share(rate, burst, replicas) for _ in range(replicas)]
    allowed = sum(
        1 for share in shares for _ in range(burst + 1) if share.take("caller", now=0.0) == 0.0
    )
    assert allowed <= max(burst, replicas)
    assert all(share.rate * replicas == pytest.approx(rate) for share in shares)
