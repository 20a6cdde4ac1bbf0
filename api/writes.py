"""The small store writes of one API process, batched: audit records and delivery marks.

An audit record is still written before its response leaves (a client that saw an
answer finds its record), but in a group commit with the records of the requests
around it. A stream's delivery watermark no longer waits in the stream: it is
coalesced per (agent, chat) and written every ``delivered_flush_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.audit import AuditRecord
from persistence import AuditRepository, ChatRepository, Database
from persistence.batching import Coalescer, GroupCommit

if TYPE_CHECKING:
    from api.app import Dependencies

AUDIT_BATCH = 100


class StoreWrites:
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps
        self.audit = GroupCommit(self._audit, AUDIT_BATCH)
        self.delivered = Coalescer(self._delivered, deps.settings.delivered_flush_seconds)

    def _database(self) -> Database:
        if self._deps.database is None:
            raise ConnectionError("mongodb is not connected")
        return self._deps.database

    async def _audit(self, records: list[AuditRecord]) -> None:
        await AuditRepository(self._database()).add_many(records)

    async def _delivered(self, marks: dict[tuple[str, str], int]) -> None:
        await ChatRepository(self._database()).mark_delivered_many(marks)

    def mark_delivered(self, agent_id: str, chat_id: str, seq: int) -> None:
        self.delivered.put((agent_id, chat_id), seq)

    async def close(self) -> None:
        await self.audit.close()
        await self.delivered.close()
