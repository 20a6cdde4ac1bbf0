"""What every client-supplied value is held to, written once for every input model.

- Text never carries an unpaired surrogate (it cannot be stored or encoded), and names and
  ids carry no control character (NUL among them) and no bidi override that would make
  them read differently from what they are.
- Numbers are finite (no NaN or infinity); counts and sequence numbers stay within what a
  JSON client, MongoDB's 64-bit integers and Temporal's payloads all hold exactly.
- Money, prices and counts are strict integers: ``true`` or ``"10"`` is not an amount.
- Client times carry a zone (a naive one is read as UTC) and lie between 1970 and 2200,
  so whatever a workflow adds to them (a review window, a timer) stays a valid date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

MAX_SAFE_INT = 2**53 - 1
"""The largest integer every JSON client reads exactly (and far inside BSON's int64)."""

Seq = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
StrictInt = Annotated[int, Strict()]

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _surrogate_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return path or "value" if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return where
            found = _surrogate_path(item, where)
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _surrogate_path(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class Input(BaseModel):
    """The base of every body the API accepts: unknown fields, unpaired surrogates and
    non-finite numbers are refused with a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_unpaired_surrogates(cls, data: Any) -> Any:
        where = _surrogate_path(data)
        if where is not None:
            raise ValueError(f"{where}: text holds an unpaired surrogate")
        return data


def plain_name(value: str) -> str:
    """A name or id: no control character, no bidi override."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, newlines, ...)")
    if _BIDI.search(value):
        raise ValueError("must not contain bidirectional control characters")
    return value


def not_a_number(value: object) -> object:
    """A time is written as ISO 8601: a bare number is not read as a Unix timestamp."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 date-time")
    return value


def client_time(value: datetime) -> datetime:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError("must lie between 1970 and 2200")
    return value


PlainName = AfterValidator(plain_name)
ClientTime = Annotated[datetime, BeforeValidator(not_a_number), AfterValidator(client_time)]
