"""Tokens: signed JWTs with one algorithm, a fixed issuer and audience, and a revocable id.

The server signs and accepts exactly one algorithm (``AGORA_JWT_ALGORITHM``): HS256 with
``AGORA_TOKEN_SECRET`` by default, RS256 or EdDSA with a key pair from files. A token
names its subject (``sub``), platform role (``role``: agent or operator), and id
(``jti``); the id is looked up in the ``credentials`` collection on every request, so a
rotated token or a retired agent's token stops working at once.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from core.settings import Settings

TokenRole = Literal["agent", "operator"]
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "role"]
_LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """Why a token was refused (said in the 401's detail, never with the token)."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    subject: str
    role: TokenRole
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    token_id: str
    subject: str
    role: TokenRole
    expires_at: datetime


def _read_key(path, what: str) -> bytes:
    if path is None:
        raise ValueError(f"AGORA_JWT_ALGORITHM needs {what}")
    return path.read_bytes()


class TokenCodec:
    """Issues and verifies the platform's JWTs; built once per process from settings."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.token_ttl_seconds)
        if self.algorithm == "HS256":
            secret = settings.token_secret.get_secret_value().encode()
            self._signing_key: object = secret
            self._verifying_key: object = secret
        else:
            from cryptography.hazmat.primitives.serialization import (
                load_pem_private_key,
                load_pem_public_key,
            )

            self._signing_key = load_pem_private_key(
                _read_key(settings.jwt_private_key_file, "AGORA_JWT_PRIVATE_KEY_FILE"), None
            )
            self._verifying_key = load_pem_public_key(
                _read_key(settings.jwt_public_key_file, "AGORA_JWT_PUBLIC_KEY_FILE")
            )

    def issue(self, subject: str, role: TokenRole, *, now: datetime | None = None) -> IssuedToken:
        now = now or datetime.now(UTC)
        token_id = uuid.uuid4().hex
        expires = now + self.ttl
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "role": role,
            "jti": token_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return IssuedToken(token, token_id, subject, role, expires.replace(microsecond=0))

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this server signed and that is in its time window;
        ``InvalidToken`` otherwise. Revocation is the caller's second check."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") != self.algorithm:
            raise InvalidToken("token algorithm not accepted")
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid token") from exc
        role = claims["role"]
        if role not in ("agent", "operator") or not isinstance(claims["sub"], str):
            raise InvalidToken("invalid token")
        return TokenClaims(
            token_id=str(claims["jti"]),
            subject=claims["sub"],
            role=role,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
