"""A state machine (hypothesis) posts tasks, bids, assigns, submits, accepts, rejects and
lets deadlines pass, at random and against the real stack; at every step no account is
below zero, every token minted is somewhere, and each task's escrow holds exactly its
reward until the task ends and nothing after."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pymongo import MongoClient

from tests.helpers import Agent, introduce

FINAL = {"settled", "refunded", "expired", "cancelled"}
MINTED_EACH = 60


def machine(http: httpx.Client, agents: list[Agent], admin: dict, skill: str, ledger_db):
    minted = {"total": 0}  # across examples: they share the database

    class Market(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.tasks: list[str] = []
            for agent in agents:
                response = http.post(
                    f"/v1/accounts/{agent.agent_id}/mint",
                    json={"amount": MINTED_EACH},
                    headers=admin,
                )
                assert response.status_code == 201
                minted["total"] += MINTED_EACH

        def _task(self, index: int) -> dict:
            task_id = self.tasks[index % len(self.tasks)]
            return http.get(f"/v1/tasks/{task_id}", headers=admin).json()

        @rule(
            poster=st.integers(0, 2),
            reward=st.integers(1, 50),
            lifetime=st.sampled_from([1.5, 3.0, 600.0]),
        )
        def post(self, poster: int, reward: int, lifetime: float) -> None:
            deadline = (datetime.now(UTC) + timedelta(seconds=lifetime)).isoformat()
            response = http.post(
                "/v1/tasks",
                json={
                    "title": "job",
                    "reward": reward,
                    "skills_required": [skill],
                    "deadline": deadline,
                },
                headers=agents[poster].headers,
            )
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                self.tasks.append(response.json()["task_id"])

        @precondition(lambda self: self.tasks)
        @rule(index=st.integers(0, 50), bidder=st.integers(0, 2), price=st.integers(1, 60))
        def bid(self, index: int, bidder: int, price: int) -> None:
            task = self._task(index)
            response = http.post(
                f"/v1/tasks/{task['task_id']}/bids",
                json={"price": price},
                headers=agents[bidder].headers,
            )
            assert response.status_code in (201, 409, 422), response.text
            if response.status_code == 201:
                assert price <= task["reward"] and agents[bidder].agent_id != task["poster"]

        @precondition(lambda self: self.tasks)
        @rule(index=st.integers(0, 50), pick=st.integers(0, 5))
        def assign(self, index: int, pick: int) -> None:
            task = self._task(index)
            if not task["bids"]:
                return
            chosen = task["bids"][pick % len(task["bids"])]["agent_id"]
            poster = next(a for a in agents if a.agent_id == task["poster"])
            response = http.post(
                f"/v1/tasks/{task['task_id']}/assign",
                json={"agent_id": chosen},
                headers=poster.headers,
            )
            assert response.status_code in (200, 409), response.text

        @precondition(lambda self: self.tasks)
        @rule(index=st.integers(0, 50))
        def submit(self, index: int) -> None:
            task = self._task(index)
            doer = next((a for a in agents if a.agent_id == task["assignee"]), None)
            if doer is None:
                return
            response = http.post(
                f"/v1/tasks/{task['task_id']}/submit", json={"result": "done"}, headers=doer.headers
            )
            assert response.status_code in (200, 409), response.text

        @precondition(lambda self: self.tasks)
        @rule(index=st.integers(0, 50), accept=st.booleans())
        def decide(self, index: int, accept: bool) -> None:
            task = self._task(index)
            poster = next(a for a in agents if a.agent_id == task["poster"])
            url = f"/v1/tasks/{task['task_id']}/" + ("accept" if accept else "reject")
            body = None if accept else {"reason": "not yet"}
            response = http.post(url, json=body, headers=poster.headers)
            assert response.status_code in (200, 409), response.text

        @invariant()
        def tokens_are_conserved_and_never_negative(self) -> None:
            if not hasattr(self, "tasks"):
                return
            totals: dict[str, int] = {}
            for entry in ledger_db["transactions"].find({}):
                totals[entry["debit"]] = totals.get(entry["debit"], 0) - entry["amount"]
                totals[entry["credit"]] = totals.get(entry["credit"], 0) + entry["amount"]
            held = {k: v for k, v in totals.items() if k != "mint"}
            assert min(held.values(), default=0) >= 0, held
            # every token in an account was minted exactly once: the ledger's mint total is
            # what the machine asked for (a duplicated or lost mint would differ)
            assert -totals.get("mint", 0) == minted["total"]

        def _escrow(self, task_id: str) -> int:
            account = f"escrow:{task_id}"
            entries = ledger_db["transactions"].find(
                {"$or": [{"credit": account}, {"debit": account}]}
            )
            return sum(e["amount"] if e["credit"] == account else -e["amount"] for e in entries)

        @invariant()
        def escrow_holds_the_whole_reward_or_nothing(self) -> None:
            for task_id in getattr(self, "tasks", []):
                task = http.get(f"/v1/tasks/{task_id}", headers=admin).json()
                assert self._escrow(task_id) in (0, task["reward"]), task

        def teardown(self) -> None:
            """Once quiet: a finished task's escrow is empty, a live one's holds the reward."""
            deadline = time.monotonic() + 20
            for task_id in getattr(self, "tasks", []):
                while True:
                    task = http.get(f"/v1/tasks/{task_id}", headers=admin).json()
                    held = self._escrow(task_id)
                    expected = 0 if task["status"] in FINAL else task["reward"]
                    if held == expected:
                        break
                    assert time.monotonic() < deadline, (task, held)
                    time.sleep(0.2)

    return Market


async def test_random_market_sequences_conserve_tokens(server, admin, settings):
    skill = f"work_{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        await api.post("/v1/skills", json={"name": skill}, headers=admin)
        agents = [
            await introduce(api, admin, f"Mkt{i}", available_resources=[{"name": skill}])
            for i in range(3)
        ]
    client = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:

        def run() -> None:
            with httpx.Client(base_url=server, timeout=30) as http:
                run_state_machine_as_test(
                    machine(http, agents, admin, skill, client[settings.mongodb_db]),
                    settings=settings_for_machine(),
                )

        await asyncio.to_thread(run)
    finally:
        client.close()


def settings_for_machine():
    return settings(
        max_examples=4,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
