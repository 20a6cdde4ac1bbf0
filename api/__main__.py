"""``python -m api``: serve the API with uvicorn, on HTTPS when a certificate is configured."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from core.logging import configure_logging
from core.runtime import settle_heap
from core.settings import Settings, get_settings, secrets_of


def serving(settings: Settings) -> dict:
    """How uvicorn serves the API: the options ``python -m api`` and the suite's server share."""
    tls = settings.tls_cert_file is not None and settings.tls_key_file is not None
    return {
        "host": settings.api_host,
        "port": settings.api_port,
        "access_log": False,
        "log_config": None,
        "ws_per_message_deflate": settings.stream_compression,
        "ssl_certfile": str(settings.tls_cert_file) if tls else None,
        "ssl_keyfile": str(settings.tls_key_file) if tls else None,
    }


def main() -> None:
    settings = get_settings()
    # uvicorn gets no logging config of its own: its lines (a WebSocket's URL among them)
    # go through the same JSON handler and its redaction as ours
    configure_logging(secrets=secrets_of(settings))
    settle_heap()
    uvicorn.run(create_app, factory=True, **serving(settings))


if __name__ == "__main__":
    main()
