"""Bounds on what one caller can ask: body size, request rate per caller, messages per agent.

Past a bound the API answers 413 or 429 with ``Retry-After`` before any route runs, so
neither MongoDB nor a Temporal worker is reached. The buckets live in the API process:
behind several API replicas (``AGORA_API_REPLICAS``) each enforces its 1/N share of each
limit, so a caller spread over them by the load balancer gets the limit, never more.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import VERIFIED, ChatTarget, PostingTarget
from core.security import InvalidToken, TokenCodec, same_secret
from core.settings import Settings

EXEMPT = ("/healthz", "/readyz", "/metrics")


class TokenBucket:
    """Token buckets by key: ``rate`` per second, at most ``burst`` saved up.

    ``take`` answers 0.0 when the request may go, else the seconds until it may. Memory
    is bounded: past ``max_keys`` the least recently used key is forgotten (a full
    bucket, the state a forgotten key would come back to after a pause anyway).
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @classmethod
    def share(cls, rate: float, burst: int, replicas: int) -> TokenBucket:
        """One replica's share of a limit the ``replicas`` API processes enforce together:
        the rate and the burst divided (a burst of at least one)."""
        return cls(rate / replicas, max(1, burst // replicas))

    def take(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        if tokens >= 1.0:
            wait, tokens = 0.0, tokens - 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def bearer_credential(scope: Scope) -> str | None:
    """The credential of an ``Authorization: Bearer`` header, the scheme in any case."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            return credential.strip() or None if scheme.lower() == "bearer" else None
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class CallerKeys:
    """Who a request counts against: the principal its token verifies as (whatever token
    of that principal it carries, however the scheme is spelled), or, until a token
    verifies, the client's address. A flood of made-up tokens is one address's flood."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = TokenCodec(settings)
        admin = settings.admin_token
        self._admin = admin.get_secret_value() if admin else None

    def key(self, scope: Scope) -> str:
        credential = bearer_credential(scope)
        if credential:
            if self._admin and same_secret(credential, self._admin):
                return "admin"
            try:
                claims = self._tokens.verify(credential)
            except InvalidToken:
                pass
            else:
                # the request's authentication takes these claims for this very token
                # instead of verifying its signature a second time
                scope.setdefault("state", {})[VERIFIED] = (credential, claims)
                return f"{claims.role}:{claims.subject}"
        return "ip:" + client_address(scope)


async def _refuse(send: Send, code: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": code, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: the per-token request rate and the request body size."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.buckets = TokenBucket.share(
            settings.rate_per_token_per_second,
            settings.rate_burst_per_token,
            settings.api_replicas,
        )
        self.callers = CallerKeys(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.callers.key(scope))
        if wait > 0:
            scope.setdefault("state", {})["limited"] = "request rate"
            await _refuse(
                send,
                429,
                "too many requests from this caller; slow down",
                {"Retry-After": retry_after(wait)},
            )
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _refuse(send, 413, f"request body over {self.max_body} bytes", {})
            return
        await self.app(scope, self._bounded(receive, send), send)

    def _bounded(self, receive: Receive, send: Send) -> Receive:
        """A body sent without a length (chunked) is cut off at the bound with a 413."""
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        f"request body over {self.max_body} bytes",
                    )
            return message

        return bounded_receive


def _message_buckets(request: Request) -> TokenBucket:
    return request.app.state.message_buckets


async def message_quota(request: Request, view: PostingTarget) -> ChatTarget:
    """Each agent posts at most ``messages_per_agent_per_minute`` (with a burst); the
    429 comes before the chat workflow is asked."""
    wait = _message_buckets(request).take(view.actor)
    if wait > 0:
        request.state.limited = "message rate"
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{view.actor} is posting too fast; retry later",
            headers={"Retry-After": retry_after(wait)},
        )
    return view


MessageQuota = Annotated[ChatTarget, Depends(message_quota)]


def message_buckets(settings: Settings) -> TokenBucket:
    return TokenBucket.share(
        settings.messages_per_agent_per_minute / 60.0,
        settings.message_burst_per_agent,
        settings.api_replicas,
    )
