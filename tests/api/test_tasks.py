"""The task marketplace through the API: escrow, bids, assignment, delivery, settlement,
reviews, expiry and the bidding window."""

from __future__ import annotations

import uuid

from persistence import LedgerRepository
from tests.conftest import eventually
from tests.helpers import balance, in_seconds, introduce, json_of


async def _skills(api, admin) -> tuple[str, str]:
    root, child = f"data_analysis_{uuid.uuid4().hex[:6]}", f"statistics_{uuid.uuid4().hex[:6]}"
    assert (await api.post("/v1/skills", json={"name": root}, headers=admin)).status_code == 201
    made = await api.post("/v1/skills", json={"name": child, "parent": root}, headers=admin)
    assert made.status_code == 201
    return root, child


async def test_a_task_is_posted_bid_on_done_accepted_paid_and_reviewed(api, admin, database):
    root, child = await _skills(api, admin)
    poster = await introduce(api, admin, "Poster")
    worker = await introduce(api, admin, "Worker", available_resources=[{"name": child}])
    novice = await introduce(api, admin, "Novice")
    await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 100}, headers=admin)

    body = {
        "title": "Summarise the survey",
        "skills_required": [root],
        "reward": 50,
        "deadline": in_seconds(600),
    }
    for bad, expected in (
        ({"reward": 0}, 422),
        ({"reward": -1}, 422),
        ({"deadline": in_seconds(-60)}, 422),
        ({"skills_required": ["no_such_skill"]}, 422),
        ({"reward": 1000}, 409),
    ):
        refused = await api.post("/v1/tasks", json=body | bad, headers=poster.headers)
        assert refused.status_code == expected, (bad, refused.text)
    assert await balance(api, poster) == 100  # nothing moved
    assert (await api.get("/v1/tasks", headers=poster.headers)).json()["items"] == []

    posted = await api.post("/v1/tasks", json=body, headers=poster.headers)
    assert posted.status_code == 201, posted.text
    task = posted.json()
    url = f"/v1/tasks/{task['task_id']}"
    assert task["status"] == "open" and await balance(api, poster) == 50
    listed = await api.get(
        "/v1/tasks", params={"status": "open", "skill": root}, headers=worker.headers
    )
    assert [t["task_id"] for t in listed.json()["items"]] == [task["task_id"]]
    candidates = (await api.get(f"{url}/candidates", headers=poster.headers)).json()
    assert [c["agent_id"] for c in candidates] == [worker.agent_id]

    for who, bid, expected in (
        (novice, {"price": 10}, 409),  # lacks the skills
        (worker, {"price": 60}, 422),  # above the reward
        (poster, {"price": 10}, 409),  # its own task
    ):
        response = await api.post(f"{url}/bids", json=bid, headers=who.headers)
        assert response.status_code == expected, (who.agent_id, response.text)
    assert (
        await api.post(
            f"{url}/bids", json={"price": 40, "note": "tomorrow"}, headers=worker.headers
        )
    ).status_code == 201
    assert (
        await api.post(f"{url}/bids", json={"price": 30}, headers=worker.headers)
    ).status_code == 409

    assert (
        await api.post(f"{url}/assign", json={"agent_id": novice.agent_id}, headers=poster.headers)
    ).status_code == 409
    assert (
        await api.post(f"{url}/assign", json={"agent_id": worker.agent_id}, headers=worker.headers)
    ).status_code == 403
    assigned = await api.post(
        f"{url}/assign", json={"agent_id": worker.agent_id}, headers=poster.headers
    )
    assert assigned.status_code == 200 and assigned.json()["status"] == "assigned"
    task = await eventually(
        lambda: json_of(api.get(url, headers=poster.headers)), lambda t: t["chat_id"] is not None
    )
    chat = await api.get(f"/v1/chats/{task['chat_id']}", headers=worker.headers)
    assert {m["agent_id"] for m in chat.json()["members"]} == {poster.agent_id, worker.agent_id}
    await eventually(
        lambda: json_of(api.get(f"/v1/agents/{worker.agent_id}", headers=worker.headers)),
        lambda m: f"task:{task['task_id']}" in m["current_activities"],
    )

    assert (
        await api.post(f"{url}/submit", json={"result": "x"}, headers=poster.headers)
    ).status_code == 403
    assert (await api.post(f"{url}/accept", headers=poster.headers)).status_code == 409
    assert (
        await api.post(f"{url}/submit", json={"result": "draft"}, headers=worker.headers)
    ).is_success
    assert (await api.post(f"{url}/accept", headers=worker.headers)).status_code == 403
    rejected = await api.post(f"{url}/reject", json={"reason": "too short"}, headers=poster.headers)
    assert rejected.json()["status"] == "assigned"
    assert (
        await api.post(f"{url}/submit", json={"result": "the summary"}, headers=worker.headers)
    ).is_success
    assert (
        await api.post(f"{url}/reviews", json={"rating": 5}, headers=poster.headers)
    ).status_code == 409
    accepted = await api.post(f"{url}/accept", headers=poster.headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "settled"
    assert await balance(api, worker) == 40 and await balance(api, poster) == 60

    assert (
        await api.post(
            f"{url}/reviews", json={"rating": 5, "comment": "great"}, headers=poster.headers
        )
    ).status_code == 201
    assert (
        await api.post(f"{url}/reviews", json={"rating": 1}, headers=poster.headers)
    ).status_code == 409
    assert (
        await api.post(f"{url}/reviews", json={"rating": 9}, headers=worker.headers)
    ).status_code == 422
    assert (
        await api.post(f"{url}/reviews", json={"rating": 4}, headers=worker.headers)
    ).status_code == 201
    assert (
        await api.post(f"{url}/reviews", json={"rating": 4}, headers=novice.headers)
    ).status_code == 403
    manifest = (await api.get(f"/v1/agents/{worker.agent_id}", headers=worker.headers)).json()
    assert manifest["reputation"] > 3.0  # a five-star review pulls above the prior
    await eventually(
        lambda: json_of(api.get(f"/v1/agents/{worker.agent_id}", headers=worker.headers)),
        lambda m: f"task:{task['task_id']}" not in m["current_activities"],
    )
    totals = await LedgerRepository(database).balances()
    assert sum(totals.values()) == 0 and totals[f"escrow:{task['task_id']}"] == 0


async def test_a_passed_deadline_refunds_and_a_bidding_window_picks_the_best_bid(
    api, admin, database, temporal_client
):
    root, child = await _skills(api, admin)
    poster = await introduce(api, admin, "Hurry")
    cheap = await introduce(api, admin, "Cheap", available_resources=[{"name": child}])
    dear = await introduce(api, admin, "Dear", available_resources=[{"name": root}])
    await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 100}, headers=admin)

    lapsed = (
        await api.post(
            "/v1/tasks",
            json={"title": "too late", "reward": 30, "deadline": in_seconds(2)},
            headers=poster.headers,
        )
    ).json()
    assert await balance(api, poster) == 70
    await eventually(
        lambda: json_of(api.get(f"/v1/tasks/{lapsed['task_id']}", headers=poster.headers)),
        lambda t: t["status"] == "expired",
        timeout=30,
    )
    await eventually(lambda: balance(api, poster), lambda b: b == 100)

    async def expired_in_temporal() -> int:  # the search attribute follows the status
        query = f'AgoraTaskId="{lapsed["task_id"]}" AND AgoraStatus="expired"'
        return len([w async for w in temporal_client.list_workflows(query)])

    await eventually(expired_in_temporal, lambda n: n == 1, timeout=20)

    windowed = (
        await api.post(
            "/v1/tasks",
            json={
                "title": "pick one",
                "reward": 50,
                "skills_required": [root],
                "deadline": in_seconds(120),
                "bidding_window": 3,
            },
            headers=poster.headers,
        )
    ).json()
    url = f"/v1/tasks/{windowed['task_id']}"
    assert (
        await api.post(f"{url}/bids", json={"price": 45}, headers=dear.headers)
    ).status_code == 201
    assert (
        await api.post(f"{url}/bids", json={"price": 20}, headers=cheap.headers)
    ).status_code == 201
    task = await eventually(
        lambda: json_of(api.get(url, headers=poster.headers)),
        lambda t: t["status"] == "assigned",
        timeout=30,
    )
    assert task["assignee"] == cheap.agent_id and task["price"] == 20
    late = await api.post(f"{url}/bids", json={"price": 10}, headers=dear.headers)
    assert late.status_code == 409


async def test_a_hosted_assignee_does_the_work_in_its_task_chat_and_submits_it(api, admin):
    root, child = await _skills(api, admin)
    poster = await introduce(api, admin, "Client")
    host = await introduce(
        api,
        admin,
        "Scribe",
        available_resources=[{"name": child}],
        brain={"persona": "a careful analyst"},
    )
    await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 10}, headers=admin)
    task = (
        await api.post(
            "/v1/tasks",
            json={
                "title": "Mean of 2 and 4",
                "description": "Give the arithmetic mean.",
                "skills_required": [root],
                "reward": 10,
                "deadline": in_seconds(300),
            },
            headers=poster.headers,
        )
    ).json()
    url = f"/v1/tasks/{task['task_id']}"
    assert (await api.post(f"{url}/bids", json={"price": 8}, headers=host.headers)).is_success
    await api.post(f"{url}/assign", json={"agent_id": host.agent_id}, headers=poster.headers)

    done = await eventually(
        lambda: json_of(api.get(url, headers=poster.headers)),
        lambda t: t["status"] == "submitted",
        timeout=60,
    )
    assert done["result"]
    page = await json_of(api.get(f"/v1/chats/{done['chat_id']}/messages", headers=poster.headers))
    senders = [m["from"] for m in page["items"]]
    assert senders[0] == "platform" and "Mean of 2 and 4" in page["items"][0]["content"]
    assert host.agent_id in senders
    assert next(m for m in page["items"] if m["from"] == host.agent_id)["content"] == done["result"]
    # the hosted assignee hears its task chat through its workflow: no copy in its inbox
    chat = await json_of(api.get(f"/v1/chats/{done['chat_id']}", headers=poster.headers))
    assert {m["agent_id"]: m["hosted"] for m in chat["members"]} == {
        poster.agent_id: False,
        host.agent_id: True,
    }
    polled = api.get(
        f"/v1/agents/{host.agent_id}/events", params={"wait": 3, "limit": 100}, headers=host.headers
    )
    inbox = await json_of(polled)
    assert [e["type"] for e in inbox["events"] if e["type"].startswith(("chat.", "message."))] == []
    accepted = await api.post(f"{url}/accept", headers=poster.headers)
    assert accepted.json()["status"] == "settled"
    assert await balance(api, host) == 8 and await balance(api, poster) == 2


async def test_the_agreed_price_reaches_the_parties_and_the_other_bidders_learn_only_who(
    api, admin
):
    """``task.assigned`` in each bidder's inbox: the assignee (and the poster) read the
    agreed price; a bidder who lost reads who won, and no price at all."""
    root, _ = await _skills(api, admin)
    poster = await introduce(api, admin, "Asker")
    won = await introduce(api, admin, "Chosen", available_resources=[{"name": root}])
    lost = await introduce(api, admin, "Passed", available_resources=[{"name": root}])
    await api.post(f"/v1/accounts/{poster.agent_id}/mint", json={"amount": 100}, headers=admin)
    body = {"title": "pick", "reward": 50, "skills_required": [root], "deadline": in_seconds(600)}
    task = (await api.post("/v1/tasks", json=body, headers=poster.headers)).json()
    url = f"/v1/tasks/{task['task_id']}"
    for who, price in ((won, 30), (lost, 25)):
        placed = await api.post(f"{url}/bids", json={"price": price}, headers=who.headers)
        assert placed.status_code == 201, placed.text
    assigned = await api.post(
        f"{url}/assign", json={"agent_id": won.agent_id}, headers=poster.headers
    )
    assert assigned.status_code == 200, assigned.text

    async def assignment_told_to(agent) -> dict | None:
        taken: list[dict] = []

        async def poll() -> list[dict]:
            page = await api.get(
                f"/v1/agents/{agent.agent_id}/events",
                params={"wait": 2, "limit": 100},
                headers=agent.headers,
            )
            taken.extend(page.json()["events"])
            return taken

        found = await eventually(
            poll, lambda t: any(e["type"] == "task.assigned" for e in t), timeout=30
        )
        return next(e["payload"] for e in found if e["type"] == "task.assigned")

    told_winner, told_loser, told_poster = (
        await assignment_told_to(won),
        await assignment_told_to(lost),
        await assignment_told_to(poster),
    )
    assert told_winner["agent_id"] == won.agent_id and told_winner["price"] == 30
    assert told_poster["price"] == 30
    assert told_loser["agent_id"] == won.agent_id and "price" not in told_loser
    assert told_loser["task_id"] == task["task_id"] and told_loser["status"] == "assigned"
