"""Which manifest versions become history: pure, no store."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.agents import FOCUS_PREFIX
from persistence.agents import PAGE_FIELDS, page_changes

PAGE = {
    "status": "active",
    "current_activities": ["writing"],
    "room_participation": ["g-1"],
    "available_resources": [{"kind": "skill", "name": "poetry"}],
    "public_profile": {"name": "Basho"},
    "hosted": True,
    "last_seen": "2026-12-02T10:00:00Z",
    "online_status": True,
    "version": 3,
}


def test_a_first_page_is_history_whole():
    assert page_changes(None, PAGE) == list(PAGE_FIELDS)


def test_presence_times_and_the_focus_line_are_not_history():
    moved = PAGE | {
        "last_seen": "2026-12-02T11:00:00Z",
        "online_status": False,
        "version": 9,
        "current_activities": [f"{FOCUS_PREFIX}g-1", "writing"],
    }
    assert page_changes(PAGE, moved) == []


def test_each_changed_page_field_is_named():
    changed = PAGE | {"status": "busy", "room_participation": ["g-1", "g-2"]}
    assert page_changes(PAGE, changed) == ["status", "room_participation"]


@given(st.sampled_from(PAGE_FIELDS), st.text(min_size=1, max_size=5))
def test_a_change_to_any_page_field_is_seen_and_only_that_one(field, value):
    changed = PAGE | {field: [value] if isinstance(PAGE[field], list) else value}
    if changed[field] == PAGE[field] or (
        field == "current_activities" and value.startswith(FOCUS_PREFIX)
    ):
        return
    assert page_changes(PAGE, changed) == [field]


async def test_history_survives_a_new_process_and_skips_writes_that_change_no_page(
    settings, database
):
    """A second process (an empty page cache) reads the last page from the history once,
    so a restart neither repeats an entry nor misses a change."""
    from datetime import UTC, datetime

    from models.agents import AgentManifest, AgentStatus, PublicProfile
    from persistence import AgentRepository, open_database

    now = datetime.now(UTC)
    manifest = AgentManifest(
        agent_id="hist-1",
        status=AgentStatus.ACTIVE,
        public_profile=PublicProfile(name="H"),
        last_updated=now,
        created_at=now,
    )
    assert await AgentRepository(database).upsert(manifest)
    restarted = await open_database(settings)
    try:
        again = AgentRepository(restarted)
        seen = manifest.model_copy(
            update={
                "version": 1,
                "online_status": True,
                "current_activities": [f"{FOCUS_PREFIX}g-9"],
            }
        )
        assert await again.upsert(seen)
        busy = seen.model_copy(update={"version": 2, "status": AgentStatus.BUSY})
        assert await again.upsert(busy)
        assert not await again.upsert(busy.model_copy(update={"version": 1}))  # stale
        history = await again.history("hist-1")
    finally:
        await restarted.close()
    assert [(h["version"], h["changed"]) for h in history] == [
        (2, ["status"]),
        (0, list(PAGE_FIELDS)),
    ]
