"""A state machine (hypothesis) drives agents through joins, leaves, role changes, reads and
posts in an invite-only group; access must be granted exactly when membership and role
allow it. The oracle below is written from the rules as the README states them, not from
the code that enforces them."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.helpers import Agent, introduce

RANK = {"owner": 100, "admin": 75, "moderator": 50, "member": 10, "guest": 0}
ROLES = ["admin", "moderator", "member", "guest"]
N_AGENTS = 4


def may_invite(actor: str, role: str) -> bool:
    return RANK[actor] >= RANK["admin"] and RANK[actor] > RANK[role]


def may_set(actor: str, target: str, role: str) -> bool:
    return may_invite(actor, role) and RANK[actor] > RANK[target]


def may_remove(actor_id: str, actor: str, target_id: str, target: str) -> bool:
    if actor_id == target_id:
        return target != "owner"
    return RANK[actor] >= RANK["admin"] and RANK[actor] > RANK[target]


def machine(http: httpx.Client, agents: list[Agent]):
    class ChatAccess(RuleBasedStateMachine):
        """One fresh invite-only group per example, opened by agent 0 with agent 1."""

        @initialize()
        def open_chat(self) -> None:
            owner = agents[0]
            body = {"type": "group", "topic": "access", "participants": [agents[1].agent_id]}
            response = http.post("/v1/chats", json=body, headers=owner.headers)
            assert response.status_code == 201, response.text
            self.chat = response.json()["chat_id"]
            self.roles: dict[str, str] = {owner.agent_id: "owner", agents[1].agent_id: "member"}
            self.posts = 0

        def url(self, tail: str = "") -> str:
            return f"/v1/chats/{self.chat}{tail}"

        @rule(
            actor=st.integers(0, N_AGENTS - 1),
            other=st.integers(0, N_AGENTS - 1),
            role=st.sampled_from(ROLES),
        )
        def invite(self, actor: int, other: int, role: str) -> None:
            a, t = agents[actor], agents[other]
            response = http.post(
                self.url("/members"),
                json={"agent_id": t.agent_id, "role": role},
                headers=a.headers,
            )
            mine = self.roles.get(a.agent_id)
            if mine is None:
                expected = 404
            elif t.agent_id in self.roles:
                expected = 409
            else:
                expected = 201 if may_invite(mine, role) else 403
            assert response.status_code == expected, (mine, role, response.text)
            if expected == 201:
                self.roles[t.agent_id] = role

        @rule(actor=st.integers(0, N_AGENTS - 1), other=st.integers(0, N_AGENTS - 1))
        def remove(self, actor: int, other: int) -> None:
            a, t = agents[actor], agents[other]
            response = http.delete(self.url(f"/members/{t.agent_id}"), headers=a.headers)
            mine, theirs = self.roles.get(a.agent_id), self.roles.get(t.agent_id)
            if mine is None or theirs is None:
                expected = 404
            elif a.agent_id == t.agent_id and theirs == "owner":
                expected = 409
            else:
                expected = 200 if may_remove(a.agent_id, mine, t.agent_id, theirs) else 403
            assert response.status_code == expected, (mine, theirs, response.text)
            if expected == 200:
                del self.roles[t.agent_id]

        @rule(
            actor=st.integers(0, N_AGENTS - 1),
            other=st.integers(0, N_AGENTS - 1),
            role=st.sampled_from(ROLES),
        )
        def set_role(self, actor: int, other: int, role: str) -> None:
            a, t = agents[actor], agents[other]
            response = http.patch(
                self.url(f"/members/{t.agent_id}"), json={"role": role}, headers=a.headers
            )
            mine, theirs = self.roles.get(a.agent_id), self.roles.get(t.agent_id)
            if mine is None or theirs is None:
                expected = 404
            else:
                expected = 200 if may_set(mine, theirs, role) else 403
            assert response.status_code == expected, (mine, theirs, role, response.text)
            if expected == 200:
                self.roles[t.agent_id] = role

        @rule(actor=st.integers(0, N_AGENTS - 1))
        def read(self, actor: int) -> None:
            a = agents[actor]
            response = http.get(self.url("/messages"), headers=a.headers)
            expected = 200 if a.agent_id in self.roles else 404
            assert response.status_code == expected, response.text
            if expected == 200:  # a post is answered before it is stored: never more
                assert len(response.json()["items"]) <= self.posts

        @rule(actor=st.integers(0, N_AGENTS - 1))
        def post(self, actor: int) -> None:
            a = agents[actor]
            response = http.post(
                self.url("/messages"), json={"content": "a word"}, headers=a.headers
            )
            role = self.roles.get(a.agent_id)
            expected = 404 if role is None else 201 if RANK[role] >= RANK["member"] else 403
            assert response.status_code == expected, (role, response.text)
            self.posts += expected == 201

        @invariant()
        def members_are_what_the_model_says(self) -> None:
            if not hasattr(self, "chat"):
                return
            chat = http.get(self.url(), headers=agents[0].headers).json()
            assert {m["agent_id"]: m["role"] for m in chat["members"]} == self.roles

    return ChatAccess


async def test_access_is_granted_exactly_when_membership_and_role_allow(server, admin):
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        agents = [await introduce(api, admin, f"Acc{i}") for i in range(N_AGENTS)]

    def run() -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            run_state_machine_as_test(
                machine(http, agents),
                settings=settings(
                    max_examples=6,
                    stateful_step_count=25,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    derandomize=False,
                ),
            )

    await asyncio.to_thread(run)
