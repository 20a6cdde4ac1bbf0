"""Accounts and the ledger: minting, transfers, balances that always match the ledger."""

from __future__ import annotations

import asyncio

from persistence import LedgerRepository
from tests.helpers import balance, introduce


async def test_admins_mint_idempotently_and_nobody_else_can(api, admin):
    a = await introduce(api, admin, "Minted")
    url = f"/v1/accounts/{a.agent_id}/mint"
    assert (await api.post(url, json={"amount": 100}, headers=a.headers)).status_code == 403
    for _ in range(2):  # a retried mint with the same key
        minted = await api.post(
            url,
            json={"amount": 100, "memo": "bootstrap"},
            headers=admin | {"Idempotency-Key": "k1"},
        )
        assert minted.status_code == 201
    assert minted.json()["balance"] == 100
    for bad in ({"amount": 0}, {"amount": -5}, {"amount": 1.5}, {}):
        assert (await api.post(url, json=bad, headers=admin)).status_code == 422
    assert (
        await api.post("/v1/accounts/nobody/mint", json={"amount": 1}, headers=admin)
    ).status_code == 404
    view = (await api.get(f"/v1/accounts/{a.agent_id}", headers=a.headers)).json()
    assert view["balance"] == 100 and [e["kind"] for e in view["entries"]] == ["mint"]


async def test_transfers_move_tokens_and_bad_ones_move_nothing(api, admin, database):
    a = await introduce(api, admin, "Payer")
    b = await introduce(api, admin, "Payee")
    await api.post(f"/v1/accounts/{a.agent_id}/mint", json={"amount": 100}, headers=admin)
    url = f"/v1/accounts/{a.agent_id}/transfers"
    paid = await api.post(
        url, json={"recipient": b.agent_id, "amount": 30, "memo": "a poem"}, headers=a.headers
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance"] == 70

    refusals = [
        ({"recipient": b.agent_id, "amount": 71}, a.headers, 409),
        ({"recipient": a.agent_id, "amount": 1}, a.headers, 422),
        ({"recipient": "nobody-here", "amount": 1}, a.headers, 422),
        ({"recipient": b.agent_id, "amount": 0}, a.headers, 422),
        ({"recipient": b.agent_id, "amount": 1}, b.headers, 403),
        ({"recipient": b.agent_id, "amount": 1}, admin, 403),
    ]
    for body, headers, expected in refusals:
        response = await api.post(url, json=body, headers=headers)
        assert response.status_code == expected, (body, response.text)
    assert await balance(api, a) == 70 and await balance(api, b) == 30
    assert (await api.get(f"/v1/accounts/{a.agent_id}", headers=b.headers)).status_code == 403
    assert await balance(api, a, admin) == 70
    totals = await LedgerRepository(database).balances()
    assert sum(totals.values()) == 0 and totals["mint"] == -100


async def test_concurrent_transfers_never_spend_the_same_tokens_twice(api, admin, database):
    a = await introduce(api, admin, "Rush")
    b = await introduce(api, admin, "Sink")
    await api.post(f"/v1/accounts/{a.agent_id}/mint", json={"amount": 100}, headers=admin)
    url = f"/v1/accounts/{a.agent_id}/transfers"
    results = await asyncio.gather(
        *[
            api.post(url, json={"recipient": b.agent_id, "amount": 30}, headers=a.headers)
            for _ in range(8)
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 5
    assert await balance(api, a) == 10 and await balance(api, b) == 90
    # a retried transfer (same key) is paid once
    for _ in range(2):
        again = await api.post(
            url,
            json={"recipient": b.agent_id, "amount": 5},
            headers=a.headers | {"Idempotency-Key": "once"},
        )
        assert again.status_code == 201
    assert await balance(api, a) == 5
