"""``audit_log``: one document per audited request, newest first by ``_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError

from models.audit import AuditRecord
from persistence.client import Database, insert_once


class AuditRepository:
    def __init__(self, database: Database) -> None:
        self._log = database.db["audit_log"]

    async def add(self, record: AuditRecord) -> None:
        """Record once; a retried write that meets its own ``_id`` keeps the first."""
        doc = record.model_dump(mode="python", exclude={"audit_id"})
        await insert_once(self._log, {"_id": record.audit_id, **doc})

    async def add_many(self, records: list[AuditRecord]) -> None:
        """Record a group in one command; a record already stored keeps its first form."""
        docs = [
            {"_id": r.audit_id, **r.model_dump(mode="python", exclude={"audit_id"})}
            for r in records
        ]
        try:
            await self._log.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> tuple[list[AuditRecord], str | None]:
        """Newest first; ``audit_id``s sort by time (see ``new_audit_id``)."""
        query: dict[str, Any] = {}
        for field, value in (
            ("actor", actor),
            ("action", action),
            ("target", target),
            ("outcome", outcome),
        ):
            if value is not None:
                query[field] = value
        if since or until:
            query["at"] = {k: v for k, v in (("$gte", since), ("$lt", until)) if v is not None}
        if before:
            query["_id"] = {"$lt": before}
        docs = await self._log.find(query).sort("_id", -1).limit(limit + 1).to_list()
        items = [AuditRecord.model_validate(doc | {"audit_id": doc["_id"]}) for doc in docs[:limit]]
        return items, (items[-1].audit_id if len(docs) > limit else None)
