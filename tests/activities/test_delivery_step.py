"""The delivery step's own rules, with its collaborators standing in: a store that is
away holds a step with no message back for a moment at most."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from activities.delivery import RAISE_ALONE_SECONDS, DeliveryActivities
from models.attention import DialogueNotice
from models.workflow_io import DeliverBatchInput


class Told:
    def __init__(self) -> None:
        self.notices: list[dict] = []

    async def notify_members(self, data) -> int:
        self.notices.append(data.notices)
        return len(data.notices)


class AwayStore:
    """A store that never answers (a PostgreSQL that is down under FerretDB)."""

    reads_quickly = True

    def __init__(self) -> None:
        self.raised: list[tuple[str, int]] = []

    def hold(self, messages) -> None:
        pass

    async def raise_last_seq(self, chat_id: str, seq: int) -> None:
        self.raised.append((chat_id, seq))
        await asyncio.Event().wait()


async def test_a_notice_step_with_the_store_away_tells_at_once_and_raises_later():
    store, told = AwayStore(), Told()
    step = DeliveryActivities(events=None, store=store, actions=told)  # type: ignore[arg-type]
    grant = DialogueNotice(
        chat_id="g-1", chat_type="group", last_seq=7, floor="granted", at=datetime.now(UTC)
    )
    data = DeliverBatchInput(
        notices={"bob": grant}, last_seq_with_notices=True, last_seq=7, store_timeout_seconds=30
    )
    # the whole store bound is 30 s: the step answers well inside it
    result = await asyncio.wait_for(step.deliver_batch(data), 10 * RAISE_ALONE_SECONDS + 5)
    assert told.notices and told.notices[0]["bob"].floor == "granted"  # the grant went out
    assert store.raised == [("g-1", 7)]  # tried
    assert result.last_seq_raised == 0  # not stored: the chat gives it again
