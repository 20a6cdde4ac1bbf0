"""One step of a chat's delivery: publish, then store, then tell the members' agents.

A chat's batch used to cost three activities (publish, store, notices), each with its own
workflow task for the answer, one after another; this is the same work as one activity
and one answer. The order inside keeps the design's rule: the readers get the events
before anything slower runs, and a store that is slow or away is left to the chat's store
lane (the workflow retries it there) instead of holding the next delivery back.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity

from activities.chat_actions import ChatActions
from activities.events import EventActivities
from activities.store import StoreActivities
from models.attention import fold_readings
from models.workflow_io import (
    DeliverBatchInput,
    DeliverBatchResult,
    NotifyMembersInput,
    PublishEventsInput,
    StoreMessagesInput,
)

log = logging.getLogger("agora.worker.delivery")


class DeliveryActivities:
    def __init__(
        self, events: EventActivities, store: StoreActivities, actions: ChatActions
    ) -> None:
        self._events = events
        self._store = store
        self._actions = actions
        self._storing: set[asyncio.Future] = set()

    def _stored(self, storing: asyncio.Future) -> None:
        self._storing.discard(storing)
        if not storing.cancelled() and (error := storing.exception()) is not None:
            log.warning("storing a delivered batch failed (the store lane retries): %r", error)

    @activity.defn(name="deliver_batch")
    async def deliver_batch(self, data: DeliverBatchInput) -> DeliverBatchResult:
        """Publish the events (a failure retries the whole step: nothing is stored before
        its events went out), store the messages within ``store_timeout_seconds`` (a
        failure or a late answer is ``stored=False``, no failure of the step),
        then signal the notices with the processing step's reading folded in."""
        result = DeliverBatchResult()
        if data.events:
            result.published = await self._events.publish_events(
                PublishEventsInput(events=data.events)
            )
        if data.messages:
            store = StoreMessagesInput(
                messages=data.messages, members=data.members, read=self._store.reads_quickly
            )
            # not cancelled when late (a cancelled driver call closes its connection, and a
            # store that is merely slow would then reconnect for every batch): it goes on
            # in the background, and the store lane stores the batch again (idempotent)
            storing = asyncio.ensure_future(self._store.store_messages(store))
            self._storing.add(storing)
            storing.add_done_callback(self._stored)
            done, _ = await asyncio.wait({storing}, timeout=data.store_timeout_seconds)
            if done and storing.exception() is None:
                result.stored, result.contexts = True, storing.result().contexts
        if data.notices:
            notices = {a: n.model_copy() for a, n in data.notices.items()}
            senders = {m.seq: m.from_ for m in data.messages}
            fold_readings(notices, senders, result.contexts)
            result.told = await self._actions.notify_members(NotifyMembersInput(notices=notices))
        return result
