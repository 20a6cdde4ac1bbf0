"""An agent's life in few steps: its set-up in one activity, and each of its main loop's
writes (events, manifest, attention) in one more.

An introduction used to be four activities one after another (the inbox, the token id,
the account, then the manifest and the event), each with a workflow task for its
answer; a loop step, three. These are the same idempotent writes, side by side where
nothing orders them: a retry repeats none of them twice for a reader.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.events import EventActivities
from activities.ledger import LedgerActivities
from activities.store import StoreActivities
from models.workflow_io import (
    FlushAgentInput,
    PublishEventsInput,
    SetUpLifeInput,
    StoreCredentialInput,
    StoreManifestInput,
)


class LifeActivities:
    def __init__(
        self, events: EventActivities, store: StoreActivities, ledger: LedgerActivities
    ) -> None:
        self._events = events
        self._store = store
        self._ledger = ledger

    @activity.defn(name="set_up_life")
    async def set_up_life(self, data: SetUpLifeInput) -> int:
        """The inbox, the token id, the account and the first manifest side by side; then
        the introduction's events (once the manifest they announce is stored)."""
        agent_id = data.manifest.agent_id
        await asyncio.gather(
            self._events.ensure_inbox(agent_id),
            self._store.store_credential(
                StoreCredentialInput(
                    agent_id=agent_id, token_id=data.token_id, expires_at=data.expires_at
                )
            ),
            self._ledger.open_account(agent_id),
            self._store.store_manifest(StoreManifestInput(manifest=data.manifest)),
        )
        if not data.events:
            return 0
        return await self._events.publish_events(PublishEventsInput(events=data.events))

    @activity.defn(name="flush_agent")
    async def flush_agent(self, data: FlushAgentInput) -> int:
        """An agent's events, then its manifest and attention side by side: the three
        writes of its main loop in one activity (one workflow task for the answer).
        Returns the events published."""
        published = 0
        if data.events:
            published = await self._events.publish_events(PublishEventsInput(events=data.events))
        stores = []
        if data.manifest is not None:
            stores.append(self._store.store_manifest(StoreManifestInput(manifest=data.manifest)))
        if data.attention is not None:
            stores.append(self._store.store_attention(data.attention))
        await asyncio.gather(*stores)
        return published
