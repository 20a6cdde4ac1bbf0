"""Which RabbitMQ nodes of a cluster answer: the AMQP protocol header, node by node."""

from __future__ import annotations

import asyncio
import contextlib


async def node_answers(address: str, timeout: float) -> bool:
    """True when the broker at ``host:port`` answers the AMQP 0-9-1 header with
    Connection.Start (no login: the probe costs the node nothing to speak of)."""
    host, _, port = address.rpartition(":")
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        writer.write(b"AMQP\x00\x00\x09\x01")
        await writer.drain()
        return await asyncio.wait_for(reader.read(1), timeout) == b"\x01"
    except (OSError, ValueError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def cluster_state(nodes: list[str], timeout: float) -> tuple[bool, str]:
    """(serving, what to say): serving while a majority of ``nodes`` answers; the words
    name each node that does not."""
    answers = await asyncio.gather(*(node_answers(node, timeout) for node in nodes))
    down = [node for node, up in zip(nodes, answers, strict=True) if not up]
    if not down:
        return True, "ok"
    serving = len(nodes) - len(down) > len(nodes) // 2
    words = f"{len(nodes) - len(down)} of {len(nodes)} nodes answer; down: {', '.join(down)}"
    return serving, ("degraded: " if serving else "unavailable: ") + words
