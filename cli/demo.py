"""The scripted scenario behind ``make demo``: every part that exists, working, through the API."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from cli.stack import PROJECT_ROOT, Stack

console = Console()

CAST = [
    ("ada", "Ada", "Counts, fits and doubts.", ["statistics", "data_analysis"]),
    ("basho", "Basho", "Writes short poems on request.", ["poetry", "translation"]),
    ("curie", "Curie", "Runs experiments and reports.", ["statistics", "lab_work"]),
    ("dijkstra", "Dijkstra", "Finds the shortest path.", ["algorithms", "python"]),
    ("eliza", "Eliza", "Listens, then asks a question back.", ["conversation"]),
]


def main() -> int:
    stack = Stack.load(PROJECT_ROOT / ".agora")
    env = stack.env()
    api_url = os.environ.get("AGORA_API_URL", env["AGORA_API_URL"])
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run = uuid.uuid4().hex[:4]
    with httpx.Client(base_url=api_url, timeout=30) as http:
        ready = http.get("/readyz").json()
        console.rule("[bold]Agora demo")
        console.print(f"ready: {ready['checks']}")

        console.rule("1. Agents are introduced (each one is an AgentWorkflow)")
        tokens: dict[str, str] = {}
        for slug, name, bio, skills in CAST:
            agent_id = f"{slug}-{run}"
            body = {
                "agent_id": agent_id,
                "name": name,
                "bio": bio,
                "available_resources": [{"kind": "skill", "name": s} for s in skills],
            }
            started = time.perf_counter()
            created = http.post("/v1/agents", json=body, headers=admin)
            created.raise_for_status()
            took = (time.perf_counter() - started) * 1000
            tokens[slug] = created.json()["token"]
            console.print(f"  introduced {agent_id:16} skills={skills}  ({took:.0f} ms)")

        console.rule("2. They heartbeat and change their own manifests")
        for slug in ("ada", "basho", "curie"):
            own = {"Authorization": f"Bearer {tokens[slug]}"}
            http.post(f"/v1/agents/{slug}-{run}/heartbeat", headers=own).raise_for_status()
        own = {"Authorization": f"Bearer {tokens['curie']}"}
        http.patch(
            f"/v1/agents/curie-{run}",
            json={"status": "busy", "current_activities": ["measuring radioactivity"]},
            headers=own,
        ).raise_for_status()
        console.print("  ada, basho, curie are online; curie is busy measuring radioactivity")
        denied = http.patch(f"/v1/agents/ada-{run}", json={"status": "idle"}, headers=own)
        console.print(
            f"  curie tries to change ada: {denied.status_code} {denied.json()['detail']}"
        )
        sneaky = http.patch(
            f"/v1/agents/curie-{run}", json={"room_participation": ["x"]}, headers=own
        )
        console.print(f"  curie tries to set room_participation: {sneaky.status_code}")

        console.rule("3. Discovery: who knows statistics?")
        time.sleep(0.5)  # heartbeats are signals: let the workflows store them
        found = http.get("/v1/agents", params={"resource": "statistics"}, headers=admin).json()
        table = Table("agent", "name", "status", "online", "activities")
        for item in found["items"]:
            if item["agent_id"].endswith(run):
                table.add_row(
                    item["agent_id"],
                    item["public_profile"]["name"],
                    item["status"],
                    "yes" if item["online_status"] else "no",
                    ", ".join(item["current_activities"]),
                )
        console.print(table)

        console.rule("4. An A2A-style agent card, with live presence")
        card = http.get(f"/v1/agents/ada-{run}/card").json()
        console.print_json(
            data={k: card[k] for k in ("name", "description", "skills", "extensions")}
        )

        console.rule("5. Chats: a direct chat, a group chat, and a live stream")
        stream_url = api_url.replace("http", "ws", 1) + f"/v1/agents/curie-{run}/stream"
        arrived: list[dict] = []
        listener = threading.Thread(
            target=_listen, args=(stream_url, tokens["curie"], arrived, 3), daemon=True
        )
        listener.start()
        time.sleep(0.5)
        ada = {"Authorization": f"Bearer {tokens['ada']}"}
        direct = http.post(
            "/v1/chats", json={"type": "direct", "participants": [f"basho-{run}"]}, headers=ada
        ).json()
        console.print(f"  ada opened a direct chat with basho: {direct['chat_id']}")
        room = http.post(
            "/v1/chats",
            json={
                "type": "group",
                "topic": "Measuring the world",
                "participants": [f"curie-{run}", f"dijkstra-{run}", f"eliza-{run}"],
            },
            headers=ada,
        ).json()
        console.print(f"  ada opened the group '{room['topic']}' ({room['chat_id']}), owner")
        lines = [
            ("ada", "How do we measure the distance between two ideas?"),
            ("dijkstra", "Build the graph first; then the shortest path is the distance."),
            ("ada", "And the weights?"),
        ]
        for who, text in lines:
            http.post(
                f"/v1/chats/{room['chat_id']}/messages",
                json={"content": text},
                headers={"Authorization": f"Bearer {tokens[who]}"},
            ).raise_for_status()
        http.post(
            f"/v1/chats/{direct['chat_id']}/messages",
            json={"content": "A haiku about statistics, please?"},
            headers=ada,
        ).raise_for_status()
        listener.join(timeout=15)
        console.print(f"  curie's live stream (WebSocket) received {len(arrived)} events:")
        for event in arrived:
            if event["type"] == "message.sent":
                message = event["payload"]["message"]
                sender = message["from"].rsplit("-", 1)[0]
                console.print(f"    #{message['seq']} {sender}: {message['content']}")
            else:
                console.print(f"    {event['type']}")
        curie = {"Authorization": f"Bearer {tokens['curie']}"}
        http.post(f"/v1/chats/{room['chat_id']}/read", json={"up_to_seq": 3}, headers=curie)
        time.sleep(0.5)
        page = http.get(f"/v1/chats/{room['chat_id']}/messages", headers=ada).json()
        first = page["items"][0]
        console.print(f"  receipts on ada's first message: {first['receipts']}")
        guest_try = http.post(
            f"/v1/chats/{direct['chat_id']}/messages", json={"content": "hi"}, headers=curie
        )
        console.print(f"  curie posts into ada and basho's direct chat: {guest_try.status_code}")

        console.rule("6. Floor control: two group chats under two speaker policies")
        _floor_demo(http, api_url, run, tokens)

        console.rule("7. Retirement")
        gone = {"Authorization": f"Bearer {tokens['eliza']}"}
        retired = http.delete(f"/v1/agents/eliza-{run}", headers=gone).json()
        after = http.get("/v1/agents", headers=gone)
        console.print(
            f"  eliza-{run} is {retired['status']}; her old token now gets {after.status_code}"
        )
        time.sleep(0.5)  # the chat hears of it by a signal from her workflow
        members = http.get(f"/v1/chats/{room['chat_id']}", headers=ada).json()["members"]
        console.print(f"  the group's members now: {[m['agent_id'] for m in members]}")

    ui = f"http://127.0.0.1:{stack.ports.temporal_ui}/namespaces/default/workflows"
    query = quote(f'AgoraAgentId="ada-{run}"')
    console.rule("Where to look")
    console.print(f"  API docs (OpenAPI)   {api_url}/docs")
    console.print(f"  Temporal UI          {ui}")
    console.print(f"  one agent's history  {ui}?query={query}")
    chat_query = quote(f'AgoraChatId="{room["chat_id"]}"')
    console.print(f"  one chat's history   {ui}?query={chat_query}")
    console.print(f"  settings for a shell source {stack.home / 'env'}")
    return 0


def _floor_demo(http: httpx.Client, api_url: str, run: str, tokens: dict[str, str]) -> None:
    def auth(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}"}

    def agent(who: str) -> str:
        return f"{who}-{run}"

    events: list[dict] = []
    stop = threading.Event()
    url = api_url.replace("http", "ws", 1) + f"/v1/agents/{agent('ada')}/stream"
    watcher = threading.Thread(
        target=_collect, args=(url, tokens["ada"], events, stop), daemon=True
    )
    watcher.start()
    time.sleep(0.3)
    started = time.monotonic()

    rr = http.post(
        "/v1/chats",
        json={"type": "group", "topic": "Round robin", "speaker_policy": "round_robin",
              "floor": {"max_messages_per_turn": 1, "turn_seconds": 30},
              "participants": [agent("basho"), agent("curie"), agent("dijkstra")]},
        headers=auth("ada"),
    ).json()  # fmt: skip
    lines = {
        "basho": "An old pond; a frog.",
        "curie": "Nothing in life is to be feared, only understood.",
        "dijkstra": "Simplicity is prerequisite for reliability.",
        "ada": "That brain of mine is something more than merely mortal.",
    }
    for who in ("dijkstra", "curie", "basho", "ada"):
        http.post(f"/v1/chats/{rr['chat_id']}/floor", json={}, headers=auth(who))
    for _ in range(4):
        holder = http.get(f"/v1/chats/{rr['chat_id']}/floor", headers=auth("ada")).json()
        speaker = holder["current_speaker"]
        if speaker is None:
            break
        who = speaker.rsplit("-", 1)[0]
        http.post(f"/v1/chats/{rr['chat_id']}/messages", json={"content": lines[who]},
                  headers=auth(who))  # fmt: skip

    llm = http.post(
        "/v1/chats",
        json={"type": "group", "topic": "Who should answer?", "speaker_policy": "llm",
              "participants": [agent("basho"), agent("curie"), agent("dijkstra")]},
        headers=auth("ada"),
    ).json()  # fmt: skip
    http.post(f"/v1/chats/{llm['chat_id']}/floor", json={"reason": "to ask"}, headers=auth("ada"))
    http.post(
        f"/v1/chats/{llm['chat_id']}/messages",
        json={"content": f"What is radioactivity? {agent('curie')} should know."},
        headers=auth("ada"),
    )
    for who in ("basho", "dijkstra", "curie"):
        http.post(f"/v1/chats/{llm['chat_id']}/floor", json={"reason": "I know"}, headers=auth(who))
    http.delete(f"/v1/chats/{llm['chat_id']}/floor", headers=auth("ada"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = http.get(f"/v1/chats/{llm['chat_id']}/floor", headers=auth("ada")).json()
        if now["current_speaker"] and now["current_speaker"] != agent("ada"):
            break
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    watcher.join(timeout=5)

    names = {rr["chat_id"]: "round_robin room", llm["chat_id"]: "llm room"}
    table = Table("t (s)", "room", "event", "agent", "why")
    for event in events:
        if not event["type"].startswith("chat.floor") and event["type"] != "chat.round_ended":
            continue
        payload = event["payload"]
        offset = event.get("_received", started) - started
        table.add_row(
            f"{offset:5.2f}",
            names.get(payload.get("chat_id"), "?"),
            event["type"].removeprefix("chat."),
            (payload.get("agent_id") or "").rsplit("-", 1)[0],
            payload.get("reason") or "",
        )
    console.print(table)
    console.print(
        "  round robin goes round the members in their fixed order, one message a turn;"
        " in the llm room the (offline) model picked the candidate ada mentioned, although"
        " basho asked first."
    )


def _collect(url: str, token: str, into: list[dict], stop: threading.Event) -> None:
    from websockets.sync.client import connect

    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        while not stop.is_set():
            try:
                event = json.loads(ws.recv(timeout=0.2))
            except TimeoutError:
                continue
            event["_received"] = time.monotonic()
            into.append(event)


def _listen(url: str, token: str, into: list[dict], messages: int) -> None:
    """Collect stream events until ``messages`` message.sent events arrived (or 10 s pass)."""
    from websockets.sync.client import connect

    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                event = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            into.append(event)
            if sum(e["type"] == "message.sent" for e in into) >= messages:
                break


if __name__ == "__main__":
    sys.exit(main())
