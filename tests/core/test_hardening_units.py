"""Pure pieces of the hardening: the denial aggregator, redaction, mentions, the public
error body, the input bounds, and what the OpenAPI promises."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.audit import DenialAggregator
from api.errors import public_validation_errors
from core.logging import REDACTED, RedactSecrets, redact
from core.settings import Settings
from llm.processing import find_mentions
from models.agents import AgentCreate, AgentManifest, PublicProfile, public_view
from models.bounds import MAX_SAFE_INT
from models.market import Bid, Task, TransferCreate

# ---- the denial aggregator -----------------------------------------------------------------

KEYS = st.sampled_from(
    [
        ("1.2.3.4", "GET /v1/chats", 401),
        ("5.6.7.8", "GET /v1/chats", 401),
        ("1.2.3.4", "POST /v1/agents", 429),
    ]
)


@settings(max_examples=200)
@given(st.lists(st.tuples(KEYS, st.floats(min_value=0, max_value=5)), max_size=200))
def test_every_denial_is_counted_once_and_each_window_writes_at_most_two_records(events):
    aggregator = DenialAggregator(window_seconds=10, max_keys=2)
    now, records = 0.0, []
    for key, gap in events:
        now += gap
        records += [(s.key, s.count) for s in aggregator.due(now)]
        if aggregator.observe(key, now):
            records.append((key, 1))
    records += [(s.key, s.count) for s in aggregator.due(now + 1_000)]
    assert sum(count for _, count in records) == len(events)
    singles = sum(1 for _, count in records if count == 1)
    assert len(records) <= 2 * singles


def test_a_flood_from_one_address_is_two_records():
    aggregator = DenialAggregator(window_seconds=60)
    key = ("9.9.9.9", "GET /v1/chats", 401)
    first = [aggregator.observe(key, t / 10) for t in range(500)]
    assert first.count(True) == 1
    [summary] = aggregator.due(61)
    assert summary.count == 499


# ---- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5 - "WebSocket /v1/agents/a/stream?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.s"'
        " [accepted]",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl",
        "GET /v1/agents/a/stream?ticket=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "connect mongodb://agora:hunter2hunter2@127.0.0.1:27017/",
        "authorization: bearer some-opaque-admin-token-value",
    ],
)
def test_credentials_are_blanked_in_any_line(line):
    clean = redact(line)
    assert REDACTED in clean
    for secret in ("eyJzdWIiOiJhIn0", "abcdefghijklmnop", "hunter2", "some-opaque"):
        assert secret not in clean


def test_the_filter_blanks_a_configured_secret_in_message_args_and_tracebacks(tmp_path):
    secret = "the-admin-token-0123456789"
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "got %s", (secret,), None)
    try:
        raise ValueError(f"boom {secret}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets([secret]).filter(record)
    assert secret not in record.getMessage() and secret not in record.exc_text


def test_settings_name_their_secrets_for_the_filter():
    from core.settings import secrets_of

    found = secrets_of(Settings(admin_token="a" * 40, token_secret="s" * 40))
    assert "a" * 40 in found and "s" * 40 in found


# ---- mentions -----------------------------------------------------------------------------


def test_mentions_by_id_or_by_at_name_but_not_inside_words():
    members = {"ada-1": "Ada", "bob-2": "Bob Smith", "cy-3": None, "me-4": "Me"}
    text = "ping @ada, also bob-2: and @BOB SMITH; not xcy-3 nor @Adam"
    assert find_mentions(text, "me-4", members) == ["ada-1", "bob-2"]
    assert find_mentions("@me", "me-4", members) == []
    assert find_mentions("cy-3 here", "me-4", members) == ["cy-3"]


# ---- the public error body --------------------------------------------------------------------


def test_a_validation_error_echoes_no_input_and_names_the_field():
    errors = [
        {
            "loc": ("body", "amount"),
            "msg": "Input should be a valid integer",
            "type": "int_type",
            "input": float("nan"),
            "ctx": {"error": ValueError("x")},
        },
        {
            "loc": ("body",),
            "msg": "Value error, memo: text holds an unpaired surrogate",
            "type": "value_error",
            "input": {"memo": "\ud800"},
        },
        {
            "loc": ("body", "\ud800"),
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
            "input": 1,
        },
    ]
    public = public_validation_errors(errors)
    assert public[0] == {
        "loc": ["body", "amount"],
        "msg": "Input should be a valid integer",
        "type": "int_type",
    }
    assert public[1]["loc"] == ["body", "memo"]
    json.dumps(public, ensure_ascii=False, allow_nan=False).encode("utf-8")  # serialisable


# ---- input bounds ------------------------------------------------------------------------------


@given(st.one_of(st.booleans(), st.text(), st.floats(allow_nan=True)))
def test_an_amount_is_only_ever_a_strict_integer(value):
    with pytest.raises(ValidationError):
        TransferCreate.model_validate({"recipient": "a", "amount": value})


@given(st.text(alphabet=st.sampled_from("ab\x00\u202e\u2066\n\x1f c"), max_size=20))
def test_names_with_controls_or_bidi_overrides_are_refused(middle):
    name = f"x{middle}x"  # edges would be stripped as whitespace
    bad = any(c in name for c in "\x00\u202e\u2066\n\x1f")
    try:
        AgentCreate(name=name)
    except ValidationError:
        assert bad
    else:
        assert not bad


def test_resources_may_be_plain_names():
    created = AgentCreate(
        name="x", available_resources=["translation", {"kind": "tool", "name": "t"}]
    )
    assert [(r.kind, r.name) for r in created.available_resources] == [
        ("skill", "translation"),
        ("tool", "t"),
    ]


# ---- what others see ---------------------------------------------------------------------------


def _task() -> Task:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    bids = [Bid(agent_id=a, price=p, note=f"{a}'s note", at=at) for a, p in (("x", 5), ("y", 7))]
    return Task(
        task_id="t",
        poster="p",
        title="t",
        reward=10,
        deadline=at,
        created_at=at,
        bids=bids,
        assignee="x",
        result="42",
        rejections=["no"],
    )


@pytest.mark.parametrize(
    ("viewer", "admin", "bids", "result"),
    [
        ("p", False, ["x", "y"], "42"),
        (None, True, ["x", "y"], "42"),
        ("x", False, ["x"], "42"),
        ("y", False, ["y"], None),
        ("z", False, [], None),
    ],
)
def test_a_task_is_seen_by_each_party_as_its_own(viewer, admin, bids, result):
    seen = _task().seen_by(viewer, admin=admin)
    assert [b.agent_id for b in seen.bids] == bids
    assert seen.result == result and seen.bid_count == 2
    assert seen.rejections == (["no"] if result else [])


def test_the_public_manifest_keeps_only_public_rooms():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    manifest = AgentManifest(
        agent_id="a",
        status="active",
        public_profile=PublicProfile(name="A"),
        room_participation=["dm-1", "g-private", "g-public"],
        current_activities=["attending chat dm-1", "task:t-1", "writing"],
        last_updated=at,
        created_at=at,
    )
    seen = public_view(manifest, {"g-public"})
    assert seen.room_participation == ["g-public"]
    assert seen.current_activities == ["task:t-1", "writing"]


# ---- the OpenAPI's promises --------------------------------------------------------------------


def test_every_operation_documents_its_errors_and_bounds_its_integers():
    from api.app import create_app

    schema = create_app(Settings(env="test")).openapi()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"429", "500", "503", "504"} <= codes, (method, path)
            if operation.get("x-agora-access") != ["public"]:
                assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= codes, (method, path)
            for parameter in operation.get("parameters", []):
                kind = parameter["schema"].get("anyOf", [parameter["schema"]])
                for option in kind:
                    if option.get("type") == "integer":
                        assert option.get("maximum", 2**64) <= MAX_SAFE_INT, (path, parameter)


# ---- a store that is away answers 503, a bad command stays a 500 ---------------------------


def test_a_ferretdb_error_for_its_postgresql_going_away_reads_as_the_store_away():
    """The error texts of the stack's FerretDB (run with --telemetry=disable, on
    PostgreSQL) and of MongoDB when the server goes away."""
    from pymongo.errors import ConnectionFailure

    from persistence import StoreFailure, store_is_away

    shutdown = "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"
    assert store_is_away(StoreFailure(shutdown, code=1))
    assert store_is_away(StoreFailure("dial tcp 127.0.0.1:5433: connection refused", code=1))
    assert store_is_away(StoreFailure("interrupted at shutdown", code=11600))
    assert not store_is_away(StoreFailure("unknown operator: $foo", code=2))
    assert not store_is_away(StoreFailure("something else went wrong", code=1))
    assert store_is_away(ConnectionFailure("connection refused"))  # no connection at all
    assert not store_is_away(ValueError("a bug, not an outage"))
