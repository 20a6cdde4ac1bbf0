"""The REST API called from inside its own process, as a given caller.

The other doors (MCP, A2A) act through it: a call over one of them is one REST call with
the caller's token, through the app itself (ASGI, no network), so it is authorised,
rate-limited and audited by the same layer, and a refusal reads the same everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx


@contextlib.asynccontextmanager
async def as_caller(app, authorization: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` that sends ``authorization`` (the caller's own header)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://agora", headers={"Authorization": authorization}
    ) as client:
        yield client


def reason(response: httpx.Response) -> str:
    """A refusal as every door words it: ``<status>: <the API's detail>``."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'body'}: {d.get('msg')}"
            for d in detail
        )
    return f"{response.status_code}: {detail or response.reason_phrase}"
