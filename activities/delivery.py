"""One step of a chat's delivery: publish, then store and tell the members' agents at once.

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
)

log = logging.getLogger("agora.worker.delivery")

ANALYSIS_SECONDS = 2.0
"""The offline reader's bound inside a delivery (it answers in microseconds)."""
RAISE_ALONE_SECONDS = 0.25
"""How long a step with no message waits for its ``last_seq`` raise (a few milliseconds
when the store is up): a store that is away must not hold the chat's next step for the
whole store bound over a floor change. Not raised in time, it is given again with the
next notices."""


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
        its events went out), the floor's notices told meanwhile; then, side by side,
        store the messages within ``store_timeout_seconds`` (a failure or a late answer is
        ``stored=False``, no failure of the step) and signal the other notices, the quick
        reading folded into all of them."""
        result = DeliverBatchResult()
        # first: the next hosted speaker, told of its turn by the post that granted it,
        # composes while this step publishes, and reads what was said from here
        self._store.hold(data.messages)
        contexts: dict = {}
        if data.messages and self._store.reads_quickly:
            contexts = await self._store.read(data.messages, data.members, ANALYSIS_SECONDS)
        notices = {a: n.model_copy() for a, n in data.notices.items()}
        fold_readings(notices, {m.seq: m.from_ for m in data.messages}, contexts)
        # a floor change is told beside the publish: a grant reaches the next speaker's
        # workflow while the broker confirms (its post is published after this batch all
        # the same: the chat publishes one batch at a time); the rest after it, so the
        # readers' delivery shares the worker with nothing slower
        floor = {a: n for a, n in notices.items() if n.floor is not None}
        tellings = [self._tell(floor)] if floor else []
        if data.events:
            try:
                result.published = await self._events.publish_events(
                    PublishEventsInput(events=data.events, without_inbox=data.without_inbox)
                )
            except BaseException:
                # a retry tells them again: an agent drops a notice it has counted, and
                # the post of a grant told twice is refused the second time
                await asyncio.gather(*tellings, return_exceptions=True)
                raise
        if rest := {a: n for a, n in notices.items() if a not in floor}:
            tellings.append(self._tell(rest))  # beside the store, not after it
        told = None
        if data.last_seq_with_notices and data.last_seq:
            chat_id = (data.messages or list(data.notices.values()))[0].chat_id
            told = (chat_id, data.last_seq)
        if data.messages or told:
            # not cancelled when late (a cancelled driver call closes its connection, and a
            # store that is merely slow would then reconnect for every batch): it goes on
            # in the background, and the store lane stores the batch again (idempotent)
            storing = asyncio.ensure_future(self._store_batch(data, contexts, told))
            self._storing.add(storing)
            storing.add_done_callback(self._stored)
            bound = data.store_timeout_seconds
            if not data.messages:
                bound = min(bound, RAISE_ALONE_SECONDS)
            done, _ = await asyncio.wait({storing}, timeout=bound)
            if done and storing.exception() is None:
                if data.messages:
                    result.stored, result.contexts = True, contexts
                result.last_seq_raised = told[1] if told else 0
        if tellings:
            result.told = sum(await asyncio.gather(*tellings))
        return result

    async def _store_batch(
        self, data: DeliverBatchInput, contexts: dict, told: tuple[str, int] | None
    ) -> None:
        """Store the batch's messages; then, with the members' notices, raise the chat's
        stored ``last_seq`` to the newest seq they are told of (after the messages, so the
        projection does not run ahead of a store that is up)."""
        if data.messages:
            await self._store.store_read(
                data.messages, contexts, raise_last_seq=not data.last_seq_with_notices
            )
        if told is not None:
            await self._store.raise_last_seq(*told)

    def _tell(self, notices: dict) -> asyncio.Future:
        return asyncio.ensure_future(
            self._actions.notify_members(NotifyMembersInput(notices=notices))
        )
