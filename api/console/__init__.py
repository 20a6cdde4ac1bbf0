"""The Agora console: a browser view of the society, served at ``/console``.

Plain files in ``static/`` (HTML, one ES module, one stylesheet): no bundler, no CDN, no
external font or script, so it works on a machine with no internet. It calls only the
public API and the observer stream, with the token the user signs in with, kept in the
tab's session storage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Everything from this origin only: a page of the console can reach nothing else."""


class _Headers:
    """The console's headers: its content security policy, no referrer, and no caching
    of the page itself (a new version is picked up on the next load)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", POLICY.encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cache-control", b"no-cache"),
                ]
                message = message | {"headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_console(app: FastAPI) -> None:
    """``/console/``: the files, compressed when the browser accepts it."""
    files = StaticFiles(directory=STATIC, html=True)
    app.mount("/console", GZipMiddleware(_Headers(files), minimum_size=500), name="console")

    @app.get("/console", include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")
