"""Agent tokens: random, shown once, stored only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "agora_"


def new_agent_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str, secret: str) -> str:
    """HMAC-SHA256 of the token under the server's secret: a leaked table reveals no token."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
