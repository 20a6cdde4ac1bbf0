"""The ``AsyncMongoClient`` factory and the indexes DESIGN.md lists, created idempotently."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.crypto import ContentCipher
from core.settings import Settings

INDEXES: dict[str, list[IndexModel]] = {
    "agents": [
        IndexModel([("status", ASCENDING)], name="status"),
        IndexModel([("available_resources.name", ASCENDING)], name="available_resources"),
    ],
    "credentials": [IndexModel([("subject", ASCENDING)], name="subject")],
    "audit_log": [
        IndexModel([("at", ASCENDING)], name="at"),
        IndexModel([("actor", ASCENDING)], name="actor"),
    ],
    "messages": [
        IndexModel([("chat_id", ASCENDING), ("seq", ASCENDING)], name="chat_seq"),
        IndexModel([("to", ASCENDING), ("timestamp", ASCENDING)], name="to_timestamp"),
    ],
    "agent_chats": [
        IndexModel(
            [("agent_id", ASCENDING), ("chat_id", ASCENDING)], name="agent_chat", unique=True
        )
    ],
    "chats": [IndexModel([("participants", ASCENDING)], name="participants")],
    "transactions": [
        IndexModel([("debit", ASCENDING)], name="debit"),
        IndexModel([("credit", ASCENDING)], name="credit"),
    ],
    "agent_skills": [IndexModel([("skill", ASCENDING)], name="skill")],
    "a2a_tasks": [IndexModel([("owner", ASCENDING)], name="owner")],
    "a2a_push_configs": [IndexModel([("task_id", ASCENDING)], name="task_id")],
}


@dataclass
class Database:
    """The client and the database one process works in, and the cipher that seals
    message content at rest (so every repository seals and opens it the same way)."""

    client: AsyncMongoClient
    db: AsyncDatabase
    cipher: ContentCipher
    bulk_statements: int = 4
    """At most this many statements in one bulk write (``Settings.mongodb_bulk_statements``)."""
    pages: OrderedDict[str, dict] = field(default_factory=OrderedDict)
    """The public page each agent's manifest was last stored with by this process: the
    manifest history compares against it, not against a keyed read of the store."""

    async def bulk_write(self, collection: AsyncCollection, requests: list) -> int:
        """Send ``requests`` (unordered) in bulk writes of at most ``bulk_statements`` each,
        one after another; return how many documents they modified or upserted.

        FerretDB v1 holds a PostgreSQL connection per statement of a command until the
        command ends, so one long bulk write (a group of 60 members, a burst of 60
        messages) takes its whole pool and waits for ever."""
        changed = 0
        for chunk in chunks(requests, self.bulk_statements):
            result = await collection.bulk_write(chunk, ordered=False)
            changed += result.modified_count + result.upserted_count
        return changed

    async def ping(self) -> None:
        await self.db.command("ping")

    async def close(self) -> None:
        await self.client.close()


def chunks(items: list, size: int) -> list[list]:
    """``items`` in order, cut into lists of at most ``size``."""
    if size < 1:
        raise ValueError("size: at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]


async def find_by_ids(
    collection: AsyncCollection, ids: list[str], projection: dict | None = None
) -> list[dict]:
    """The documents with these ids, one keyed find each (side by side).

    FerretDB v1 (the local stand-in, run with --telemetry=disable) does not push an
    ``$in`` down to PostgreSQL: it decodes every document of the collection to filter
    them itself, a cost that grows with the society, where a find by one ``_id`` is
    filtered by PostgreSQL. On MongoDB both are index look-ups."""
    found = await asyncio.gather(
        *(collection.find_one({"_id": i}, projection) for i in dict.fromkeys(ids))
    )
    return [doc for doc in found if doc is not None]


async def insert_once(collection: AsyncCollection, doc: dict[str, Any]) -> bool:
    """Insert ``doc``; False when its ``_id`` is already stored (a retried write).

    Documents that are written once go in by insert rather than by an ``_id`` upsert:
    FerretDB v1 on SQLite (the local stand-in, run with --telemetry=disable) finds a
    document by ``_id`` with a scan of the whole table (its ``explain`` says
    ``SCAN``), so an upsert grows slower with every document stored, while an insert's
    duplicate check uses the unique index. On MongoDB both are index look-ups.
    """
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def upsert_once_raced(
    collection: AsyncCollection, query: dict[str, Any], update: dict[str, Any]
) -> None:
    """An upsert that another upsert of the same ``_id`` may race: the loser's insert
    meets the winner's document (E11000), and the update then finds it. MongoDB retries
    such an upsert itself; FerretDB v1 (the local stand-in, run with
    --telemetry=disable) does not. A second E11000 is a document ``query`` may not touch
    (another owner's), and is raised."""
    try:
        await collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        await collection.update_one(query, update, upsert=True)


async def open_database(settings: Settings, *, create_indexes: bool = True) -> Database:
    """Connect and make sure every index exists (create_indexes is a no-op when they do)."""
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=int(settings.readiness_timeout_seconds * 1000) + 3000,
        appname="agora",
        maxPoolSize=settings.mongodb_max_pool_size,
    )
    database = Database(
        client,
        client[settings.mongodb_db],
        ContentCipher.from_settings(settings),
        bulk_statements=settings.mongodb_bulk_statements,
    )
    if create_indexes:
        await ensure_indexes(database)
        from persistence.ledger import SkillRepository

        await SkillRepository(database).ensure_defaults()
    return database


async def ensure_indexes(database: Database) -> None:
    """Create the indexes that do not exist yet.

    Only the missing ones are sent: FerretDB v1 drops the connection when a compound
    index that already exists is created again, which MongoDB would accept as a no-op.
    """
    for collection, indexes in INDEXES.items():
        existing = set(await database.db[collection].index_information())
        missing = [index for index in indexes if index.document["name"] not in existing]
        if missing:
            await database.db[collection].create_indexes(missing)
