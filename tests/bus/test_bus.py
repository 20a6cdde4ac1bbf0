"""Each real service is reached: a document through FerretDB, an event through RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

from bus import EventBus, consume
from models.events import EventEnvelope
from persistence import Database


async def test_a_document_written_through_the_mongodb_wire_protocol_reads_back(database: Database):
    doc_id = uuid.uuid4().hex
    await database.db["smoke"].insert_one({"_id": doc_id, "hello": "agora", "n": 3})
    found = await database.db["smoke"].find_one({"_id": doc_id})
    assert found == {"_id": doc_id, "hello": "agora", "n": 3}
    indexes = await database.db["agents"].index_information()
    assert {"status", "available_resources"} <= set(indexes)


async def test_an_event_published_with_confirm_is_consumed_with_ack(bus: EventBus):
    received: asyncio.Queue[EventEnvelope] = asyncio.Queue()

    async def handler(event: EventEnvelope) -> None:
        await received.put(event)

    queue = f"{bus.topology.prefix}.smoke"
    cancel = await consume(bus.connection, queue, handler, bind=(bus.topology.events, "smoke.#"))
    try:
        event = EventEnvelope(
            event_id=str(uuid.uuid4()),
            type="smoke.tested",
            occurred_at="2026-11-24T00:00:00Z",
            payload={"n": 1},
        )
        await bus.publish(event)
        got = await asyncio.wait_for(received.get(), timeout=10)
        assert got == event
    finally:
        await cancel()
    # acked: nothing is left in the queue for a second consumer
    channel = await bus.connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    assert declared.declaration_result.message_count == 0
    await channel.close()
