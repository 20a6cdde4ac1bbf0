"""Structured JSON logs: one line per event, with the correlation id when there is one.

No credential reaches a log line: every record passes ``RedactSecrets`` on its way out,
which blanks JWTs, bearer credentials, ``token=`` / ``ticket=`` query values and the
secrets the process was configured with (the admin token), whatever logger wrote it
(uvicorn's own lines included, since ``python -m api`` hands uvicorn no logging config).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


REDACTED = "[redacted]"
_PATTERNS = (
    # a JWT: three base64url parts, the first a JSON header ("eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), rf"\1 {REDACTED}"),
    (
        re.compile(r"(?i)\b(token|ticket|access_token|api_key|password|secret)=([^&\s\"']+)"),
        rf"\1={REDACTED}",
    ),
    # a password in a service URL (mongodb://user:pass@host, amqp://user:pass@host)
    (re.compile(r"(://[^:/@\s]+):[^@/\s]+@"), rf"\1:{REDACTED}@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential it carries blanked."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Blank credentials in a record's message and exception before any handler sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None) or correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key in ("agent_id", "chat_id", "workflow_id", "event_type", "event_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_text or record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send JSON lines to stderr, credentials blanked; quieten the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "pymongo", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
