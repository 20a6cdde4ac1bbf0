"""Counts for the metrics gauges (read by the API's refresher, never by /metrics itself)."""

from __future__ import annotations

from persistence.client import Database


async def count_by(database: Database, collection: str, field: str) -> dict[str, int]:
    """How many documents have each value of ``field``."""
    cursor = await database.db[collection].aggregate(
        [{"$group": {"_id": f"${field}", "n": {"$sum": 1}}}]
    )
    return {str(row["_id"]): int(row["n"]) for row in await cursor.to_list()}
