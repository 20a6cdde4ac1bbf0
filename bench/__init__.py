"""Agora's benchmarks and fault drills (``make bench``, ``make drills``)."""

from __future__ import annotations

import httpx

KEEPALIVE_SECONDS = 2.0
"""How long the bench's HTTP clients keep an idle connection. Below the API's keep-alive
(uvicorn's 5 s): with httpx's default, also 5 s, a client could send on a connection in
the same moment the server closed it, and the post failed with ``httpx.ReadError`` (seen
at 50 and 80 posts a second offered, when a burst left more connections open than the
load then needed)."""


def client_limits(connections: int) -> httpx.Limits:
    """The connection pool of a bench client: ``connections`` at most."""
    return httpx.Limits(max_connections=connections, keepalive_expiry=KEEPALIVE_SECONDS)
