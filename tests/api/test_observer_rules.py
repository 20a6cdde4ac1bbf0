"""What an observer is shown: pure rules over event envelopes (no services)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import WebSocketDisconnect
from hypothesis import given
from hypothesis import strategies as st

from api.deps import Principal
from api.routes.events import ObserverSink, shows
from models.events import EventEnvelope, ObserverScope, event_chat_id

AT = datetime(2026, 12, 2, tzinfo=UTC)
ids = st.sampled_from(["ada", "bob", "cy"])
chats = st.sampled_from(["g-1", "g-2", "dm-3"])


def envelope(type_: str, payload: dict, recipients: list[str]) -> EventEnvelope:
    return EventEnvelope(
        event_id="e", type=type_, occurred_at=AT, payload=payload, recipients=recipients
    )


def test_the_chat_of_an_event_is_read_from_the_payload_or_the_message():
    assert event_chat_id(envelope("chat.floor_granted", {"chat_id": "g-1"}, [])) == "g-1"
    message = {"message": {"chat_id": "g-2", "seq": 1}}
    assert event_chat_id(envelope("message.sent", message, [])) == "g-2"
    assert event_chat_id(envelope("agent.focus_changed", {"agent_id": "ada"}, [])) is None


events = st.builds(
    lambda kind, chat, recipients: envelope(
        kind,
        {"message": {"chat_id": chat}} if kind == "message.sent" else {"chat_id": chat},
        recipients,
    ),
    st.sampled_from(["message.sent", "chat.floor_granted", "chat.member_joined"]),
    chats,
    st.lists(ids, unique=True),
)
principals = st.one_of(
    st.just(Principal("admin")),
    st.builds(lambda o: Principal("operator", operator_id=o), ids),
    st.builds(lambda a: Principal("agent", agent_id=a), ids),
)


@given(principals, st.one_of(st.none(), chats), events)
def test_an_observer_never_sees_another_chat_nor_an_agent_what_is_not_addressed_to_it(
    principal, chat_id, event
):
    scope = ObserverScope(chat_id=chat_id)
    shown = shows(principal, scope, event)
    if chat_id is not None and event_chat_id(event) != chat_id:
        assert not shown
    elif principal.role == "agent":
        assert shown == (principal.agent_id in event.recipients)
    else:
        assert shown  # admins and operators see the whole scope


class GoneClient:
    """A WebSocket whose client left: the first send fails as Starlette's does (1006),
    later ones as a socket whose close went out."""

    def __init__(self) -> None:
        self.sends = 0

    async def send_text(self, text: str) -> None:
        self.sends += 1
        if self.sends == 1:
            raise WebSocketDisconnect(code=1006)
        raise RuntimeError('Cannot call "send" once a close message has been sent.')


async def test_an_observer_whose_client_left_ends_its_stream_instead_of_failing_per_event():
    stop = asyncio.Event()
    client = GoneClient()
    sink = ObserverSink(client, Principal("admin"), ObserverScope(), stop)
    event = envelope("chat.floor_granted", {"chat_id": "g-1"}, ["ada"])
    await sink.send(event)  # raises nothing into the broker's consumer
    assert stop.is_set()  # the tail ends, and its queue goes
    for _ in range(3):
        await sink.send(event)
    assert client.sends == 1  # nothing more is tried on the gone client
