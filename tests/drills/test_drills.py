"""The fault drills at their reduced size (``DRILL_SIZE=ci make drills`` in one test).

They start a stack of their own (``cli.stack.Stack``: FerretDB with ``--telemetry=disable``,
every service on 127.0.0.1), so killing and restarting its parts leaves the
session's stack alone. What must hold after each drill is what a user relies on:
every accepted message stored once and in order, every recipient served, and no 500.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from bench import drills


def lost_nothing(name: str, report: dict) -> None:
    """What must hold after any drill: every accepted message stored once and in order,
    every recipient served, no 500."""
    assert report["faults"] >= 1, name
    assert report["accepted"] >= drills.SIZES["ci"]["messages"], name  # + posts while down
    assert report["stored"] == report["accepted"], name
    assert report["stored_twice"] == 0, name
    assert report["accepted_not_stored"] == report["stored_not_accepted"] == 0, name
    assert report["answers_match_store"], name
    assert report["seq_gaps"] == 0, name
    assert report["deliveries_missing"] == 0, (name, report["missing_examples"])
    assert report["server_errors"] == 0, (name, report["answers"], report["answers_while_down"])


@pytest_asyncio.fixture(scope="module")
async def result(tmp_path_factory):
    outcome = await drills.run("ci", home=tmp_path_factory.mktemp("drills"))
    drills.print_table(outcome)
    return outcome


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_every_drill_loses_nothing_and_answers_503_not_500(result):
    for name, report in result["drills"].items():
        lost_nothing(name, report)
    for name in ("rabbitmq-restart", "ferretdb-restart", "postgres-restart", "temporal-restart"):
        down = result["drills"][name]["answers_while_down"]
        assert down.get("503", 0) >= 1, (name, down)  # /readyz at least names the outage
        assert "500" not in down and "post 500" not in down, (name, down)
    for name in ("ferretdb-restart", "postgres-restart"):  # the store away: posts go on
        down = result["drills"][name]["answers_while_down"]
        assert down.get("post 201", 0) >= 1 and "post 503" not in down, (name, down)
    kills = result["drills"]["worker-sigkill"]["faults"]
    assert kills >= 2


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_the_long_life_continues_as_new_and_keeps_working(result):
    life = result["long_life"]
    size = drills.SIZES["ci"]
    assert life["stored"] == size["long_messages"] + 1
    assert life["seq_gaps"] == 0
    assert life["last_post_status"] == 201 and life["last_post_seq"] == size["long_messages"] + 1
    assert life["last_tuning_status"] == 200 and life["last_tuning_applied"]
    # both lived through several runs, each history well below Temporal's warning
    assert life["chat"]["runs"] >= size["long_messages"] // size["updates_per_run"]
    assert life["agent"]["runs"] >= size["long_attention"] // size["updates_per_run"]
    for kind in ("chat", "agent"):
        assert life[kind]["largest_history_events"] < drills.HISTORY_WARN_EVENTS
        assert life[kind]["largest_history_bytes"] < drills.HISTORY_WARN_BYTES


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.timeout(1800)
async def test_the_cluster_drills_lose_nothing_and_resume_on_the_other_part(tmp_path_factory):
    """``DRILLS=cluster DRILL_SIZE=ci make drills``: two APIs, two workers, three RabbitMQ
    nodes; an API killed with 50 streams on the cluster, a node killed, a worker killed
    again and again, every process restarted in turn."""
    outcome = await drills.run(
        "ci", home=tmp_path_factory.mktemp("cluster-drills"), parts=("cluster",)
    )
    drills.print_table(outcome)
    cluster = outcome["cluster"]
    assert cluster["listeners"] == 50
    reports = cluster["drills"]
    assert set(reports) == {
        "cluster-api-sigkill",
        "cluster-rabbitmq-node-sigkill",
        "cluster-worker-sigkill",
        "cluster-rolling-restart",
    }
    for name, report in reports.items():
        lost_nothing(name, report)
        # work went on after every fault: a message accepted after it reached a reader
        assert report["resumed"]["n"] == report["faults"], (name, report["resumed"])
    killed = reports["cluster-api-sigkill"]
    assert killed["streams_on_killed_api"] >= 1
    assert killed["streams_back"]["n"] == killed["streams_on_killed_api"], killed
    assert reports["cluster-worker-sigkill"]["faults"] == drills.SIZES["ci"]["worker_kills"]
    assert reports["cluster-rolling-restart"]["faults"] == 7
