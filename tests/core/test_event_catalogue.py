"""The event catalogue (``models.events``): every event a workflow emits is a typed
payload, and its JSON on the bus is what consumers have always read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from models.chats import Message, MessageContext
from models.events import (
    AgentFocusChanged,
    AgentReplyFailed,
    ChatFloorExpired,
    ChatFloorReleased,
    ChatRoundEnded,
    CredentialsRevoked,
    EventEnvelope,
    MessageSent,
    catalogue,
)

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def test_every_event_type_is_catalogued_once_under_a_name_the_envelope_takes():
    types = catalogue()
    assert "message.sent" in types and "task.settled" in types and "chat.floor_granted" in types
    for name, cls in types.items():
        assert name == cls.TYPE
        # the envelope refuses a type outside its pattern
        EventEnvelope(event_id="e", type=name, occurred_at=T0)
    assert len({cls for cls in types.values()}) == len(types)


def test_a_message_goes_out_as_the_stored_message_with_its_from():
    message = Message(
        message_id="room:000000000007",
        chat_id="room",
        seq=7,
        from_="ann",
        timestamp=T0,
        message_type="text",
        content="hello",
        is_private=False,
        langchain_context=MessageContext(mentions=["bob"]),
    )
    payload = MessageSent(message=message).as_dict()
    assert payload == {"message": message.model_dump(mode="json", by_alias=True)}
    assert payload["message"]["from"] == "ann" and "from_" not in payload["message"]


def test_a_field_without_a_value_is_left_out_and_one_with_a_value_is_kept():
    assert AgentReplyFailed(agent_id="a", chat_id="room").as_dict() == {
        "agent_id": "a",
        "chat_id": "room",
    }
    assert AgentReplyFailed(agent_id="a", task_id="t").as_dict() == {
        "agent_id": "a",
        "task_id": "t",
    }
    ended = ChatRoundEnded(chat_id="room", round=2, reason="idle", turns=3)
    assert "conditions" not in ended.as_dict()
    fired = ChatRoundEnded(chat_id="room", round=2, reason="budget", turns=3, conditions=[])
    assert fired.as_dict()["conditions"] == []  # an empty list is a value
    # a plain None that means "nobody" stays in the payload
    focus = AgentFocusChanged(agent_id="a", from_=None, to="room").as_dict()
    assert focus == {"agent_id": "a", "from": None, "to": "room"}


def test_a_release_carries_the_turns_figures_only_when_the_turn_was_recorded():
    unrecorded = ChatFloorReleased(chat_id="room", agent_id="a", reason="left", round=1)
    assert unrecorded.as_dict() == {
        "chat_id": "room",
        "agent_id": "a",
        "reason": "left",
        "round": 1,
    }
    recorded = ChatFloorExpired(
        chat_id="room",
        agent_id="a",
        reason="expired",
        round=1,
        turn_seconds=2.5,
        model_seconds=None,
        overhead_seconds=None,
    )
    assert recorded.type == "chat.floor_expired"
    assert recorded.as_dict()["turn_seconds"] == 2.5
    assert recorded.as_dict()["model_seconds"] is None  # no model: reported as none


def test_an_emitter_cannot_misspell_a_field_and_a_reader_ignores_a_new_one():
    with pytest.raises(ValidationError, match="subjct"):
        CredentialsRevoked(subjct="a")
    read = CredentialsRevoked.model_validate(
        {"subject": "a", "role": "agent", "added_later": 1}, extra="ignore"
    )
    assert read == CredentialsRevoked(subject="a")
