"""Which RabbitMQ nodes answer, against a real broker and a closed port."""

from __future__ import annotations

from urllib.parse import urlsplit

from bus.nodes import cluster_state, node_answers
from cli.stack import free_port


def _broker(settings) -> str:
    url = urlsplit(settings.amqp_url)
    return f"{url.hostname}:{url.port}"


async def test_a_live_broker_answers_and_a_closed_port_does_not(settings):
    assert await node_answers(_broker(settings), 2)
    assert not await node_answers(f"127.0.0.1:{free_port()}", 2)


async def test_a_cluster_serves_while_a_majority_answers_and_names_who_does_not(settings):
    live, dead = _broker(settings), [f"127.0.0.1:{free_port()}" for _ in range(2)]
    assert await cluster_state([live, live, live], 2) == (True, "ok")
    serving, words = await cluster_state([live, live, dead[0]], 2)
    assert serving and words == f"degraded: 2 of 3 nodes answer; down: {dead[0]}"
    serving, words = await cluster_state([live, *dead], 2)
    assert not serving and words.startswith("unavailable: 1 of 3") and dead[1] in words
