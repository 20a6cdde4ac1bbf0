"""A chat's own account through the API, against the real services: the owner funds it,
hosted turns are paid from it to their speakers, a round that would spend past it ends,
and what is left goes back to the owner."""

from __future__ import annotations

import os
import signal

from persistence import LedgerRepository
from tests.conftest import eventually
from tests.helpers import Stream, balance, group, introduce, json_of, worker_process


async def test_hosted_turns_are_paid_from_the_chat_s_account_until_the_round_would_spend_past_it(
    api, admin, server, database
):
    owner = await introduce(api, admin, "Owner")
    hosts = [
        await introduce(api, admin, f"Paid{i}", brain={"turns_per_hour": 1000}) for i in (1, 2)
    ]
    minted = await api.post(
        f"/v1/accounts/{owner.agent_id}/mint", json={"amount": 1000}, headers=admin
    )
    assert minted.status_code == 201
    # a tenth of a ledger token a model token: the offline model's turns cost a few each
    room = await group(
        api,
        owner,
        *hosts,
        speaker_policy="round_robin",
        floor={"max_messages_per_turn": 1, "price_per_1k_tokens": 100},
    )
    cid = room["chat_id"]
    deposits, withdrawals = (f"/v1/chats/{cid}/account/{w}" for w in ("deposits", "withdrawals"))

    # bad input moves nothing
    for body, headers, status, says in [
        ({"amount": 0}, owner.headers, 422, ["body", "amount"]),
        ({"amount": "10"}, owner.headers, 422, ["body", "amount"]),
        ({"amount": 10}, hosts[0].headers, 403, "owner"),
        ({"amount": 10}, admin, 403, "owner"),
        ({"amount": 1001}, owner.headers, 409, "insufficient funds"),
    ]:
        refused = await api.post(deposits, json=body, headers=headers)
        assert refused.status_code == status, (body, refused.text)
        detail = refused.json()["detail"]
        assert (detail[0]["loc"] == says) if status == 422 else (says in detail), detail
    empty = await api.post(withdrawals, json={"amount": 1}, headers=owner.headers)
    assert empty.status_code == 409 and "holds 0" in empty.json()["detail"]
    assert await balance(api, owner) == 1000
    assert (await json_of(api.get(f"/v1/chats/{cid}/floor", headers=owner.headers)))[
        "budget"
    ] is None

    # a deposit retried with its key moves once
    for _ in range(2):
        funded = await api.post(
            deposits, json={"amount": 120}, headers=owner.headers | {"Idempotency-Key": "first"}
        )
        assert funded.status_code == 201, funded.text
    assert funded.json()["balance"] == 120 and await balance(api, owner) == 880
    reused = await api.post(
        deposits, json={"amount": 50}, headers=owner.headers | {"Idempotency-Key": "first"}
    )
    assert reused.status_code == 422, reused.text
    assert reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await balance(api, owner) == 880

    async with Stream(server, owner) as stream:
        await api.post(f"/v1/chats/{cid}/floor", headers=owner.headers)
        go = await api.post(
            f"/v1/chats/{cid}/messages",
            json={"content": "go", "yield": True},
            headers=owner.headers,
        )
        assert go.status_code == 201, go.text
        seen = await stream.until(
            lambda e: e["type"] == "chat.round_ended" and e["payload"]["reason"] == "budget",
            timeout=90,
        )
    paid = [e["payload"] for e in seen if e["type"] == "chat.turn_paid"]
    ended = seen[-1]["payload"]
    assert len(paid) >= 2 and {p["agent_id"] for p in paid} <= {h.agent_id for h in hosts}
    assert ended["conditions"][0].startswith("budget:"), ended
    view = (await json_of(api.get(f"/v1/chats/{cid}/floor", headers=owner.headers)))["budget"]
    assert view["balance"] == 120 - sum(p["amount"] for p in paid)
    assert view["balance"] < view["next_turn_needs"]  # why the round ended

    # the ledger has every payment, to the agent that spoke, once
    async def account():
        return await json_of(api.get(f"/v1/chats/{cid}/account", headers=hosts[0].headers))

    ledger = await eventually(account, lambda a: a["balance"] == view["balance"], timeout=30)
    turns = [e for e in ledger["entries"] if e["kind"] == "chat_turn"]
    assert sorted(e["entry_id"] for e in turns) == sorted(p["entry_id"] for p in paid)
    for host in hosts:
        earned = sum(p["amount"] for p in paid if p["agent_id"] == host.agent_id)
        assert await balance(api, host) == earned

    # the owner takes what is left back; the ledger still sums to nothing
    left = view["balance"]
    back = await api.post(withdrawals, json={"amount": left + 1}, headers=owner.headers)
    assert back.status_code == 409 and f"holds {left}" in back.json()["detail"]
    for _ in range(2 if left else 0):  # retried with its key: it moves once
        back = await api.post(
            withdrawals, json={"amount": left}, headers=owner.headers | {"Idempotency-Key": "rest"}
        )
        assert back.status_code == 201 and back.json()["balance"] == 0, back.text
    if left:
        reused = await api.post(
            withdrawals, json={"amount": 1}, headers=owner.headers | {"Idempotency-Key": "rest"}
        )
        assert reused.status_code == 422, reused.text
    assert await balance(api, owner) == 880 + left
    assert (await account())["balance"] == 0
    totals = await LedgerRepository(database).balances()
    assert sum(totals.values()) == 0


async def test_only_a_floor_chat_that_is_open_has_an_account_to_fund(api, admin):
    owner, other = await introduce(api, admin, "Plain"), await introduce(api, admin, "Other")
    await api.post(f"/v1/accounts/{owner.agent_id}/mint", json={"amount": 10}, headers=admin)
    plain = await group(api, owner, other)  # no floor control
    url = f"/v1/chats/{plain['chat_id']}/account/deposits"
    refused = await api.post(url, json={"amount": 5}, headers=owner.headers)
    assert refused.status_code == 409 and "no floor control" in refused.json()["detail"]
    floored = await group(api, owner, other, speaker_policy="fifo")
    await api.delete(f"/v1/chats/{floored['chat_id']}", headers=owner.headers)
    url = f"/v1/chats/{floored['chat_id']}/account/deposits"
    closed = await api.post(url, json={"amount": 5}, headers=owner.headers)
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]
    assert await balance(api, owner) == 10
    hidden = await api.get(
        f"/v1/chats/{plain['chat_id']}/account",
        headers=(await introduce(api, admin, "Stranger")).headers,
    )
    assert hidden.status_code == 404  # a chat the caller may not see is not there


async def test_a_worker_killed_mid_paid_round_pays_each_turn_once(
    api_only, admin, settings, database
):
    """The charges live in the chat's workflow state and reach the ledger by their ids:
    a worker killed mid-round loses none and pays none twice, and the round still ends
    where the account runs short."""
    api = api_only
    with worker_process(settings) as first:
        owner = await introduce(api, admin, "Payer")
        hosts = [
            await introduce(api, admin, f"Killed{i}", brain={"turns_per_hour": 1000})
            for i in range(3)
        ]
        await api.post(f"/v1/accounts/{owner.agent_id}/mint", json={"amount": 500}, headers=admin)
        floor_settings = {
            "max_messages_per_turn": 1,
            "price_per_1k_tokens": 100,
            "round_robin_grace_seconds": 20,
        }
        room = await group(api, owner, *hosts, speaker_policy="round_robin", floor=floor_settings)
        cid = room["chat_id"]
        funded = await api.post(
            f"/v1/chats/{cid}/account/deposits", json={"amount": 200}, headers=owner.headers
        )
        assert funded.status_code == 201, funded.text
        await api.post(f"/v1/chats/{cid}/floor", headers=owner.headers)
        await api.post(
            f"/v1/chats/{cid}/messages",
            json={"content": "go", "yield": True},
            headers=owner.headers,
        )

        async def page():
            return await json_of(api.get(f"/v1/chats/{cid}/messages", headers=owner.headers))

        seen = await eventually(page, lambda p: len(p.get("items", [])) >= 4, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)  # mid-round: a turn is being paid for
        first.wait()

    async def budget():
        view = await json_of(api.get(f"/v1/chats/{cid}/floor", headers=owner.headers))
        return view.get("budget") or {}

    async def account():
        return await json_of(api.get(f"/v1/chats/{cid}/account", headers=owner.headers))

    with worker_process(settings):
        spent = await eventually(
            budget, lambda b: b and b["balance"] < b["next_turn_needs"], timeout=120
        )
        ledger = await eventually(account, lambda a: a["balance"] == spent["balance"], timeout=60)
    turns = [e for e in ledger["entries"] if e["kind"] == "chat_turn"]
    assert sum(e["amount"] for e in turns) == 200 - spent["balance"] == spent["spent"]
    assert len(turns) > len(seen["items"]) - 1  # the hosts' turns went on being paid
    numbers = sorted(int(e["entry_id"].rsplit("/", 1)[1]) for e in turns)
    assert numbers == list(range(1, len(turns) + 1))  # none lost, none twice
    paid = {h.agent_id: await balance(api, h, admin) for h in hosts}
    assert sum(paid.values()) == spent["spent"]
    assert sum((await LedgerRepository(database).balances()).values()) == 0


async def test_a_withdrawal_retried_with_its_key_moves_once_and_the_key_reused_moves_nothing(
    api, admin
):
    """Whatever the paid round left (it may leave nothing), a withdrawal's key holds."""
    owner, other = await introduce(api, admin, "Keyed"), await introduce(api, admin, "Guest")
    await api.post(f"/v1/accounts/{owner.agent_id}/mint", json={"amount": 10}, headers=admin)
    room = await group(api, owner, other, speaker_policy="fifo")
    base = f"/v1/chats/{room['chat_id']}/account"
    funded = await api.post(f"{base}/deposits", json={"amount": 8}, headers=owner.headers)
    assert funded.status_code == 201 and funded.json()["balance"] == 8, funded.text
    keyed = owner.headers | {"Idempotency-Key": "back-4"}
    for _ in range(2):
        back = await api.post(f"{base}/withdrawals", json={"amount": 4}, headers=keyed)
        assert back.status_code == 201 and back.json()["balance"] == 4, back.text
    reused = await api.post(f"{base}/withdrawals", json={"amount": 3}, headers=keyed)
    assert reused.status_code == 422, reused.text
    assert reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert "already used to withdraw 4" in reused.json()["detail"][0]["msg"]
    assert (await json_of(api.get(base, headers=owner.headers)))["balance"] == 4
    assert await balance(api, owner) == 6
