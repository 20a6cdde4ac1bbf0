"""ChatWorkflow survives: a worker killed during a burst loses and duplicates nothing, and a
long chat continues as new without a gap in ``seq``."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal

from bus import EventBus, consume
from core.names import chat_workflow_id
from models.events import EventEnvelope
from persistence import Database, MessageRepository
from tests.conftest import eventually
from tests.helpers import group, introduce, json_of, value, worker_process


async def posted(api, chat_id: str, body: dict, headers: dict):
    """One post, retried on 429 and 503 as a client would."""
    while True:
        url = f"/v1/chats/{chat_id}/messages"
        r = await api.post(url, json=body, headers=headers, timeout=120)
        if r.status_code not in (429, 503):
            return r
        await asyncio.sleep(0.2)


async def post_in_turn(api, chat_ids: tuple[str, ...], poster, count: int) -> None:
    """``count`` posts into each chat, one chat after the other, one at a time."""
    for i in range(count):
        for chat_id in chat_ids:
            r = await posted(api, chat_id, {"content": f"note {i}"}, poster.headers)
            assert r.status_code == 201, r.text


async def attention_entries(api, agent) -> dict[str, dict]:
    """The agent's attention view: each dialogue's entry, by chat."""
    view = (await api.get(f"/v1/agents/{agent.agent_id}/attention", headers=agent.headers)).json()
    return {d["entry"]["chat_id"]: d["entry"] for d in view["dialogues"]}


async def post_burst(api, chat_id: str, poster, count: int, concurrency: int = 8) -> list[int]:
    """Post ``count`` messages with a few in flight at once; retry 429 and 503 like a client."""
    seqs: list[int] = []
    numbers = iter(range(count))

    async def lane() -> None:
        for i in numbers:
            key = {"Idempotency-Key": f"burst-{i}"}
            r = await posted(api, chat_id, {"content": f"burst {i}"}, poster.headers | key)
            assert r.status_code == 201, r.text
            seqs.append(r.json()["seq"])

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return seqs


async def test_killing_the_worker_during_a_burst_of_500_loses_and_duplicates_nothing(
    api_only, admin, settings, database: Database, bus: EventBus
):
    api = api_only
    with worker_process(settings) as first:
        ada = await introduce(api, admin, "Ada")
        bob = await introduce(api, admin, "Bob")
        chat = await group(api, ada, bob)
        chat_id = chat["chat_id"]
        received: list[EventEnvelope] = []

        async def on_event(event: EventEnvelope) -> None:
            if event.type == "message.sent":
                received.append(event)

        cancel = await consume(
            bus.connection,
            bus.topology.inbox_queue(bob.agent_id),
            on_event,
            dead_letter_exchange=bus.topology.dead_letters,
        )
        burst = asyncio.create_task(post_burst(api, chat_id, ada, 500))
        await eventually(_count(database, chat_id), lambda n: n >= 120, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with worker_process(settings) as second:
        await eventually(_count(database, chat_id), lambda n: n >= 300, timeout=90)
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()
    with worker_process(settings):
        seqs = await asyncio.wait_for(burst, timeout=240)
        stored = await eventually(_count(database, chat_id), lambda n: n >= 500, timeout=90)
        await eventually(
            lambda: value({e.event_id for e in received}), lambda ids: len(ids) >= 500, timeout=90
        )
    await cancel()

    assert sorted(seqs) == list(range(1, 501))
    assert stored == 500
    docs = await database.db["messages"].find({"chat_id": chat_id}).to_list(None)
    assert sorted(d["seq"] for d in docs) == list(range(1, 501))
    assert all("content" not in d for d in docs)  # sealed at rest
    contents = {m.content for m in await MessageRepository(database).page(chat_id, 0, 1000)}
    assert len(contents) == 500
    unique = {e.event_id for e in received}
    assert len(unique) == 500
    delivered_seqs = {e.payload["message"]["seq"] for e in received}
    assert delivered_seqs == set(range(1, 501))
    print(f"\nworker-kill burst: {len(received) - len(unique)} duplicate deliveries dropped by id")


async def test_a_long_chat_continues_as_new_without_a_gap(api, admin, settings, temporal_client):
    settings.continue_as_new_after_events = 100
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = await group(api, ada, bob)
    handle = temporal_client.get_workflow_handle(chat_workflow_id(chat["chat_id"]))
    first_run = (await handle.describe()).run_id
    seqs = await post_burst(api, chat["chat_id"], ada, 120, concurrency=4)
    assert sorted(seqs) == list(range(1, 121))
    runs = await eventually(lambda: _describe_run(handle), lambda run: run != first_run, timeout=30)
    assert runs != first_run
    # a post that meets the continue-as-new itself gets 503 with Retry-After: retried
    after = await posted(api, chat["chat_id"], {"content": "after"}, bob.headers)
    assert after.json()["seq"] == 121
    # update ids do not survive continue-as-new; the chat's own memory of keys does
    retried = await posted(
        api, chat["chat_id"], {"content": "burst 0"}, ada.headers | {"Idempotency-Key": "burst-0"}
    )
    assert retried.status_code == 201
    page = await eventually(
        lambda: json_of(
            api.get(f"/v1/chats/{chat['chat_id']}/messages?limit=500", headers=bob.headers)
        ),
        lambda p: len(p["items"]) >= 121,
    )
    assert [m["seq"] for m in page["items"]] == list(range(1, 122))
    first = next(m for m in page["items"] if m["content"] == "burst 0")
    same = {"message_id": first["message_id"], "seq": first["seq"], "floor_yielded": False}
    assert retried.json() == same
    shown = (await api.get(f"/v1/chats/{chat['chat_id']}", headers=bob.headers)).json()
    assert {m["agent_id"] for m in shown["members"]} == {ada.agent_id, bob.agent_id}


async def test_a_chat_continues_as_new_before_temporal_caps_its_updates(
    api, admin, settings, temporal_client
):
    """Temporal refuses the 2,001st update of one run, however short the history: the
    chat counts its updates and continues as new first (here after 40 of them)."""
    settings.continue_as_new_after_updates = 40
    ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
    chat = await group(api, ada, bob)
    handle = temporal_client.get_workflow_handle(chat_workflow_id(chat["chat_id"]))
    seqs = await post_burst(api, chat["chat_id"], ada, 130, concurrency=4)
    assert sorted(seqs) == list(range(1, 131))
    query = f"WorkflowId = '{chat_workflow_id(chat['chat_id'])}'"

    async def runs_of_chat() -> list:
        return [r async for r in temporal_client.list_workflows(query)]

    runs = await eventually(runs_of_chat, lambda runs: len(runs) >= 3, timeout=20)
    lengths = [
        len(
            (
                await temporal_client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()
            ).events
        )
        for r in runs
    ]
    assert max(lengths) < settings.continue_as_new_after_events
    assert (await handle.describe()).status.name == "RUNNING"


def _count(database: Database, chat_id: str):
    return lambda: database.db["messages"].count_documents({"chat_id": chat_id})


async def _describe_run(handle) -> str:
    return (await handle.describe()).run_id


async def test_a_slow_store_delays_no_delivery_and_a_full_backlog_answers_503(
    settings, admin, temporal_client, database: Database, bus: EventBus, monkeypatch
):
    """While the store hangs, every accepted message is delivered at once and is in the
    history a reader pages (the chat's accepted tail); a chat whose unstored backlog would
    outgrow continue-as-new's 2 MiB refuses the next post with 503 and Retry-After, taking
    no seq for it; when the store catches up every message is stored once, in order."""

    from activities.store import StoreActivities
    from tests.helpers import app_client
    from workers.registry import build_workers
    from workflows.chat import PENDING_BYTES_KEPT, pending_weight

    settings.message_burst_per_agent = settings.rate_burst_per_token = 1000
    store = StoreActivities.store_read
    gate = asyncio.Event()
    calls: list[int] = []

    async def slow_store(self, messages, contexts, **how) -> int:  # delivery's and the lane's
        calls.append(messages[0].seq)
        await gate.wait()
        return await store(self, messages, contexts, **how)

    monkeypatch.setattr(StoreActivities, "store_read", slow_store)
    async with contextlib.AsyncExitStack() as running:
        for worker in build_workers(temporal_client, settings, database, bus):
            await running.enter_async_context(worker)
        api = await running.enter_async_context(app_client(settings))
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        chat_id = (await group(api, ada, bob))["chat_id"]
        seen, cancel = await _delivered_seqs(bus, bob)
        url = f"/v1/chats/{chat_id}/messages"
        first = await api.post(url, json={"content": "one"}, headers=ada.headers)
        await eventually(lambda: _value(calls), lambda c: c[:1] == [1])  # its store hangs
        second = await api.post(url, json={"content": "two"}, headers=ada.headers)
        assert (first.status_code, second.status_code) == (201, 201)
        await eventually(lambda: _value(seen), lambda s: s == [1, 2], timeout=20)
        assert await _count(database, chat_id)() == 0  # delivered, not stored yet
        page = (await api.get(url, headers=bob.headers)).json()
        assert [(m["seq"], m["content"]) for m in page["items"]] == [(1, "one"), (2, "two")]

        big = "x" * settings.max_message_bytes
        accepted = 0
        while True:
            r = await api.post(url, json={"content": big}, headers=ada.headers)
            if r.status_code != 201:
                break
            accepted += 1
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert "retry" in r.json()["detail"]
        weight = pending_weight([_pending("one"), _pending("two"), *[_pending(big)] * accepted])
        assert weight >= PENDING_BYTES_KEPT > weight - pending_weight([_pending(big)])
        await eventually(lambda: _value(seen), lambda s: len(s) == accepted + 2, timeout=30)

        gate.set()  # the store catches up: every message stored once, in order
        retry = ada.headers | {"Idempotency-Key": "after"}

        async def post_after():
            return await api.post(url, json={"content": "after"}, headers=retry)

        last = await eventually(post_after, lambda r: r.status_code != 503, timeout=60)
        assert last.status_code == 201 and last.json()["seq"] == accepted + 3  # 503s took none
        await eventually(lambda: _value(seen), lambda s: len(s) >= accepted + 3, timeout=60)
        assert sorted(set(seen)) == list(range(1, accepted + 4))
        await eventually(_count(database, chat_id), lambda n: n == accepted + 3, timeout=60)
        await cancel()


async def test_a_slow_model_delays_no_delivery_and_its_reading_comes_after(
    settings, admin, temporal_client, database: Database, bus: EventBus
):
    """The processing step (mentions, importance, intent) runs after delivery: with the
    model stuck, a message is delivered, stored and readable; when the model answers, its
    reading is written onto the stored message and the mention reaches attention."""
    from tests.helpers import app_client
    from workers.registry import build_workers

    release = asyncio.Event()
    asked: list[int] = []

    class StuckModel:
        async def abatch(self, items):
            asked.append(len(items))
            await release.wait()
            return [{"mentions": [], "importance": 0.9, "intent": "request"} for _ in items]

    async with contextlib.AsyncExitStack() as running:
        for worker in build_workers(temporal_client, settings, database, bus, StuckModel()):
            await running.enter_async_context(worker)
        api = await running.enter_async_context(app_client(settings))
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        chat_id = (await group(api, ada, bob))["chat_id"]
        seen, cancel = await _delivered_seqs(bus, bob)
        url = f"/v1/chats/{chat_id}/messages"
        for text in ("please look", "and this"):
            assert (
                await api.post(url, json={"content": text}, headers=ada.headers)
            ).status_code == 201
        await eventually(lambda: _value(seen), lambda s: s == [1, 2], timeout=20)
        await eventually(lambda: _value(asked), bool)  # asked, and it has not answered
        await eventually(_count(database, chat_id), lambda n: n == 2, timeout=20)
        stored = (await api.get(url, headers=bob.headers)).json()["items"]
        assert [m["langchain_context"] for m in stored] == [None, None]

        release.set()

        async def contexts():
            return [
                m["langchain_context"]
                for m in (await api.get(url, headers=bob.headers)).json()["items"]
            ]

        read = await eventually(contexts, lambda c: all(c), timeout=30)
        assert [c["intent"] for c in read] == ["request", "request"]

        async def attention():
            view = (
                await api.get(f"/v1/agents/{bob.agent_id}/attention", headers=bob.headers)
            ).json()
            return {d["entry"]["chat_id"]: d["entry"] for d in view["dialogues"]}.get(chat_id)

        entry = await eventually(attention, lambda d: d and d["message_importance"] >= 0.9)
        assert entry["unread"] == 2
        await cancel()


async def test_every_post_is_in_the_history_read_right_after(api, admin, database):
    """Read-your-writes: 1,000 post-then-read pairs over 10 chats (in turn), the store
    lagging or not: every page read right after a 201 holds that message."""
    owner, other = await introduce(api, admin, "Writer"), await introduce(api, admin, "Reader")
    chats = [(await group(api, owner, other))["chat_id"] for _ in range(10)]
    misses: list[tuple[str, int]] = []
    for n in range(100):
        for chat_id in chats:
            url = f"/v1/chats/{chat_id}/messages"
            posted = await api.post(url, json={"content": f"m{n}"}, headers=owner.headers)
            assert posted.status_code == 201, posted.text
            seq = posted.json()["seq"]
            page = await api.get(
                url, params={"after_seq": seq - 1, "limit": 5}, headers=other.headers
            )
            assert page.status_code == 200, page.text
            if [m["seq"] for m in page.json()["items"]][:1] != [seq]:
                misses.append((chat_id, seq))
    assert misses == []
    stored = lambda: database.db["messages"].count_documents({})  # noqa: E731
    await eventually(stored, lambda count: count == 1000, timeout=60)


async def _delivered_seqs(bus: EventBus, agent) -> tuple[list[int], object]:
    """The seqs of the ``message.sent`` events reaching the agent's inbox, as they come."""
    seen: list[int] = []

    async def on_event(event: EventEnvelope) -> None:
        if event.type == "message.sent":
            seen.append(event.payload["message"]["seq"])

    cancel = await consume(
        bus.connection,
        bus.topology.inbox_queue(agent.agent_id),
        on_event,
        dead_letter_exchange=bus.topology.dead_letters,
    )
    return seen, cancel


async def _value(items: list) -> list:
    return list(items)


def _pending(content: str):
    from datetime import UTC, datetime

    from models.chats import Message

    return Message(
        message_id="m",
        chat_id="c",
        seq=1,
        from_="a",
        timestamp=datetime.now(UTC),
        message_type="text",
        content=content,
        is_private=False,
    )


async def test_a_busy_chat_tells_a_members_agent_a_few_times_and_counts_every_message(
    settings, admin, temporal_client, worker, database
):
    """A group chat tells its members' agents of new messages at most once per its notice
    interval (the first at once): 30 posts one after another reach Bob's attention as 30
    unread, in a few notices to his agent workflow, not one a post."""
    from temporalio.api.enums.v1 import EventType

    from core.names import agent_workflow_id
    from tests.helpers import app_client

    settings.group_notice_interval_seconds = 2.0
    settings.group_notice_spread = 0.0  # the interval as set: its cadence is counted
    async with app_client(settings) as api:
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        chat_id = (await group(api, ada, bob))["chat_id"]
        url = f"/v1/chats/{chat_id}/messages"
        started = asyncio.get_running_loop().time()
        for i in range(30):
            r = await posted(api, chat_id, {"content": f"note {i}"}, ada.headers)
            assert r.status_code == 201, r.text
        elapsed = asyncio.get_running_loop().time() - started

        async def unread():
            view = (
                await api.get(f"/v1/agents/{bob.agent_id}/attention", headers=bob.headers)
            ).json()
            entries = {d["entry"]["chat_id"]: d["entry"] for d in view["dialogues"]}
            return entries.get(chat_id, {}).get("unread")

        await eventually(unread, lambda n: n == 30, timeout=30)
        history = await temporal_client.get_workflow_handle(
            agent_workflow_id(bob.agent_id)
        ).fetch_history()
        notices = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and e.workflow_execution_signaled_event_attributes.signal_name == "dialogue_notice"
        ]
        # the first at once, then one an interval (and the last after the burst)
        assert 1 <= len(notices) <= elapsed / settings.group_notice_interval_seconds + 2, (
            len(notices),
            elapsed,
        )
        page = (await api.get(url, headers=bob.headers)).json()["items"]
        assert [m["seq"] for m in page] == list(range(1, 31))


async def test_a_chats_stored_last_seq_is_raised_with_its_notices_not_once_a_message(
    settings, admin, worker, monkeypatch
):
    """The chat's stored ``last_seq`` (``GET /v1/chats/{id}``) is a keyed write, a scan of
    ``chats`` on FerretDB v1: it goes with the members' notices. A lone post shows at
    once (its notice goes at once); 30 posts one after another show their last within the
    notice interval after the burst, in a few writes, not one a post."""
    from persistence import ChatRepository
    from tests.helpers import app_client

    settings.group_notice_interval_seconds = 3.0
    settings.group_notice_spread = 0.0  # the interval as set: its cadence is counted
    raised: list[tuple[str, int]] = []
    keyed = ChatRepository.raise_last_seq

    async def counted(self, chat_id: str, seq: int) -> None:
        raised.append((chat_id, seq))
        await keyed(self, chat_id, seq)

    monkeypatch.setattr(ChatRepository, "raise_last_seq", counted)
    async with app_client(settings) as api:
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        chat_id = (await group(api, ada, bob))["chat_id"]

        async def last_seq() -> int:
            return (await json_of(api.get(f"/v1/chats/{chat_id}", headers=bob.headers)))["last_seq"]

        r = await posted(api, chat_id, {"content": "first"}, ada.headers)
        assert r.status_code == 201, r.text
        await eventually(last_seq, lambda n: n == 1, timeout=10)
        started = asyncio.get_running_loop().time()
        for i in range(30):
            r = await posted(api, chat_id, {"content": f"note {i}"}, ada.headers)
            assert r.status_code == 201, r.text
        elapsed = asyncio.get_running_loop().time() - started
        await eventually(last_seq, lambda n: n == 31, timeout=30)
        writes = [seq for chat, seq in raised if chat == chat_id]
        assert writes == sorted(writes) and writes[-1] == 31, writes
        # the first post's, then one a notice interval and the burst's last: 31 before
        bound = elapsed / settings.group_notice_interval_seconds + 3
        assert 2 <= len(writes) <= bound and len(writes) < 31, (writes, elapsed)


async def _told(temporal_client, agent_id: str) -> collections.Counter:
    """How many notices each chat signalled the agent's workflow."""
    from temporalio.api.enums.v1 import EventType

    from core.names import agent_workflow_id

    history = await temporal_client.get_workflow_handle(agent_workflow_id(agent_id)).fetch_history()
    told: collections.Counter = collections.Counter()
    for e in history.events:
        signal = e.workflow_execution_signaled_event_attributes
        if (
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and signal.signal_name == "dialogue_notice"
        ):
            told[json.loads(signal.input.payloads[0].data)["chat_id"]] += 1
    return told


async def test_plain_news_in_a_group_waits_its_interval_a_mention_and_a_direct_chat_do_not(
    settings, admin, temporal_client, worker
):
    """In a group chat without floor control no agent acts on plain news: its members'
    agents hear of it once per the group interval (here a minute), while a mention goes at
    once with the news counted so far, and a direct chat tells every post."""
    from tests.helpers import app_client

    settings.notice_interval_seconds = 0.0
    settings.group_notice_interval_seconds = 60.0
    settings.group_notice_spread = 0.0  # the interval as set: its cadence is counted
    async with app_client(settings) as api:
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        room = (await group(api, ada, bob))["chat_id"]
        r = await api.post(
            "/v1/chats",
            json={"type": "direct", "participants": [bob.agent_id]},
            headers=ada.headers,
        )
        assert r.status_code in (200, 201), r.text
        pair = r.json()["chat_id"]
        await post_in_turn(api, (room, pair), ada, 10)

        async def entries():
            return await attention_entries(api, bob)

        seen = await eventually(entries, lambda e: e.get(pair, {}).get("unread") == 10)
        assert seen[room]["unread"] == 1  # the first post at once, the rest wait
        told = await _told(temporal_client, bob.agent_id)
        assert told[room] == 1 and told[pair] >= 5, told

        r = await posted(api, room, {"content": f"{bob.agent_id}, a question"}, ada.headers)
        assert r.status_code == 201, r.text
        seen = await eventually(entries, lambda e: e[room]["mentioned"], timeout=15)
        assert seen[room]["unread"] == 11  # the waiting news came with the mention
        assert (await _told(temporal_client, bob.agent_id))[room] == 2


async def test_posts_keep_the_chats_timers_and_the_news_still_goes_when_they_fire(
    settings, admin, temporal_client, worker
):
    """Every post wakes a chat's loops; the timer they wait on (the notice interval's end,
    the floor projection's) stands while its deadline does, instead of being cancelled and
    started again by each post: 12 posts cost no timer each, and the news that waited goes
    to Bob's agent when the interval ends, with no post after it."""
    from temporalio.api.enums.v1 import EventType

    from tests.helpers import app_client

    settings.group_notice_interval_seconds = 3.0
    settings.group_notice_spread = 0.0  # the interval as set: its cadence is counted
    settings.projection_interval_seconds = 3.0
    async with app_client(settings) as api:
        ada, bob = await introduce(api, admin, "Ada"), await introduce(api, admin, "Bob")
        room = (await group(api, ada, bob))["chat_id"]
        floored = (
            await group(api, ada, bob, speaker_policy="fifo", floor={"max_messages_per_turn": 50})
        )["chat_id"]
        r = await api.post(f"/v1/chats/{floored}/floor", json={}, headers=ada.headers)
        assert r.status_code in (200, 202), r.text
        await post_in_turn(api, (room, floored), ada, 12)

        async def unread():
            return {c: e["unread"] for c, e in (await attention_entries(api, bob)).items()}

        # the first post was told at once; the other eleven when the interval's timer fired
        await eventually(unread, lambda seen: seen.get(room) == 12, timeout=30)
        for chat_id in (room, floored):
            history = await temporal_client.get_workflow_handle(
                chat_workflow_id(chat_id)
            ).fetch_history()
            kinds = collections.Counter(e.event_type for e in history.events)
            started = kinds[EventType.EVENT_TYPE_TIMER_STARTED]
            cancelled = kinds[EventType.EVENT_TYPE_TIMER_CANCELED]
            assert started <= 4 and cancelled <= 2, (chat_id, started, cancelled)
