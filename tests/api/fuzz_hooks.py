"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.api.fuzz_hooks``): besides what it
generates from the schema, send the odd but well-formed input a probe sends. Every JSON
body also goes out with each string turned into an unpaired surrogate, a NUL or a bidi
override, and each number into NaN, an infinity or an integer past 2^63; every query
also goes with its integers past 2^63. The API must answer each with a documented 4xx."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import strategies as st

ODD_STRINGS = ("\ud800", "a\udfffb", "nul\x00", "\u202eevil")
ODD_NUMBERS = (float("nan"), float("inf"), float("-inf"), 2**63, -(2**63) - 1, 2**64)


def poisoned_json(value: Any, odd_string: str, odd_number: float | int) -> bytes:
    """The body as bytes (an HTTP client refuses to encode NaN itself), with its oddities."""
    return json.dumps(poisoned(value, odd_string, odd_number)).encode()


def poisoned(value: Any, odd_string: str, odd_number: float | int) -> Any:
    """``value`` with every string and number replaced (booleans stay booleans)."""
    if isinstance(value, dict):
        return {k: poisoned(v, odd_string, odd_number) for k, v in value.items()}
    if isinstance(value, list):
        return [poisoned(v, odd_string, odd_number) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return odd_string
    if isinstance(value, int | float):
        return odd_number
    return value


@schemathesis.hook
def flatmap_body(context, body):
    if not isinstance(body, dict | list):
        return st.just(body)
    odd = st.builds(
        poisoned_json, st.just(body), st.sampled_from(ODD_STRINGS), st.sampled_from(ODD_NUMBERS)
    )
    return st.one_of(st.just(body), odd)


@schemathesis.hook
def flatmap_query(context, query):
    if not query:
        return st.just(query)
    big = {
        k: (str(2**63) if isinstance(v, int) and not isinstance(v, bool) else v)
        for k, v in query.items()
    }
    return st.one_of(st.just(query), st.just(big))
