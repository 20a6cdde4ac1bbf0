"""How this project starts Debian's Chromium: headless, off the network, with
Playwright (its own browser download cannot be had here). The console's tests, its
bench and the README's screenshots all start it the same way."""

from __future__ import annotations

import os
import shutil

OFF_THE_NETWORK = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""No update, sync or background lookups: every request a page makes is its own."""


def chromium_path() -> str | None:
    """``AGORA_CHROMIUM``, else Debian's ``chromium`` on the PATH (``make setup``)."""
    return os.environ.get("AGORA_CHROMIUM") or shutil.which("chromium")


def chromium_args() -> list[str]:
    """The flags, and ``--no-sandbox`` when run as root (Chromium refuses otherwise)."""
    return OFF_THE_NETWORK + (["--no-sandbox"] if os.geteuid() == 0 else [])
