"""The scripted scenario behind ``make demo``: hosted agents and one external agent, a direct
chat and two group chats under two speaker policies, a live transcript, focus switching,
floor hand-overs with their reasons, retirement, and where to look."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.markup import escape
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


def ask_over_a2a(api_url: str, agent_id: str, token: str, verify) -> dict:
    """One A2A SendMessage (blocking) to an agent, as the token's agent."""
    import asyncio

    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

    async def ask() -> dict:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30, verify=verify) as http:
            config = ClientConfig(httpx_client=http, streaming=False)
            client = await create_client(f"{api_url}/a2a/{agent_id}", client_config=config)
            message = Message(
                role=Role.ROLE_USER,
                message_id=str(uuid.uuid4()),
                parts=[Part(text="Hello! What can you do?")],
            )
            [answer] = [r async for r in client.send_message(SendMessageRequest(message=message))]
            await client.close()
        task = answer.task
        return {
            "state": TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower(),
            "context_id": task.context_id,
            "reply": " ".join(p.text for p in task.status.message.parts),
        }

    return asyncio.run(ask())


class Transcript(threading.Thread):
    """The visitor's live stream, printed as it happens; stops after ``quiet`` silent seconds."""

    def __init__(
        self, url: str, token: str, names: dict[str, str], rooms: dict[str, str], verify=True
    ):
        super().__init__(daemon=True)
        self.url, self.token, self.names, self.rooms = url, token, names, rooms
        self.ssl = verify if url.startswith("wss") and verify is not True else None
        self.events: list[dict] = []
        self.stop = threading.Event()
        self.started_at = time.monotonic()
        self.last_event = time.monotonic()

    def run(self) -> None:
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"}
        with connect(self.url, additional_headers=headers, ssl=self.ssl) as ws:
            while not self.stop.is_set():
                try:
                    event = json.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue
                event["_t"] = time.monotonic() - self.started_at
                self.last_event = time.monotonic()
                self.events.append(event)
                self.show(event)

    def show(self, event: dict) -> None:
        payload = event["payload"]
        room = self.rooms.get(payload.get("chat_id") or payload.get("message", {}).get("chat_id"))
        if event["type"] == "message.sent":
            message = payload["message"]
            who = self.names.get(message["from"], message["from"])
            text = escape(message["content"])
            console.print(f"  [dim]{event['_t']:6.2f}s[/dim] ({room}) [bold]{who}[/bold]: {text}")
        elif event["type"] == "chat.floor_granted":
            who = self.names.get(payload["agent_id"], payload["agent_id"])
            console.print(
                f"  [dim]{event['_t']:6.2f}s[/dim] ({room}) floor to {who}: {payload['reason']}"
            )

    def wait_quiet(self, quiet: float, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and time.monotonic() - self.last_event < quiet:
            time.sleep(0.2)


def main() -> int:
    stack = Stack.load(PROJECT_ROOT / ".agora")
    env = stack.env()
    api_url = os.environ.get("AGORA_API_URL", env["AGORA_API_URL"])
    admin = {"Authorization": f"Bearer {env['AGORA_ADMIN_TOKEN']}"}
    run = uuid.uuid4().hex[:4]

    def aid(slug: str) -> str:
        return f"{slug}-{run}"

    verify = stack.http_verify()
    with httpx.Client(base_url=api_url, timeout=60, verify=verify) as http:
        ready = http.get("/readyz").json()
        console.rule("[bold]Agora demo")
        console.print(f"ready: {ready['checks']}")

        console.rule("1. Five hosted agents (LangChain minds) and one external visitor")
        tokens: dict[str, str] = {}
        for slug, name, bio, skills in CAST:
            body = {
                "agent_id": aid(slug),
                "name": name,
                "bio": bio,
                "available_resources": [{"kind": "skill", "name": s} for s in skills],
                "brain": {"persona": f"You are {name}. {bio}", "turns_per_hour": 3},
            }
            started = time.perf_counter()
            created = http.post("/v1/agents", json=body, headers=admin)
            created.raise_for_status()
            tokens[slug] = created.json()["token"]
            took = (time.perf_counter() - started) * 1000
            console.print(f"  {aid(slug):14} hosted, skills={skills}  ({took:.0f} ms)")
        visitor = http.post(
            "/v1/agents",
            json={"agent_id": aid("visitor"), "name": "Visitor", "bio": "an external agent"},
            headers=admin,
        ).json()
        tokens["visitor"] = visitor["token"]
        me = {"Authorization": f"Bearer {tokens['visitor']}"}
        http.post(f"/v1/agents/{aid('visitor')}/heartbeat", headers=me)
        console.print(f"  {aid('visitor'):14} external (this script, over the API)")

        console.rule("2. Discovery: who knows statistics?")
        found = http.get("/v1/agents", params={"resource": "statistics"}, headers=me).json()
        table = Table("agent", "name", "status", "hosted")
        for item in found["items"]:
            if item["agent_id"].endswith(run):
                table.add_row(
                    item["agent_id"],
                    item["public_profile"]["name"],
                    item["status"],
                    "yes" if item["hosted"] else "no",
                )
        console.print(table)
        card = http.get(f"/v1/agents/{aid('ada')}/card").json()
        console.print(
            f"  ada's A2A card: skills {[s['id'] for s in card['skills']]}, "
            f"presence {card['extensions']['agora/presence']}"
        )
        concierge = http.post(
            "/v1/agents",
            json={"agent_id": aid("concierge"), "name": "Concierge", "brain": {}},
            headers=admin,
        )
        concierge.raise_for_status()
        task = ask_over_a2a(api_url, aid("concierge"), tokens["visitor"], verify)
        console.print(
            f"  the visitor asks the concierge over A2A (a2a-sdk's client): task "
            f"{task['state']}, context {task['context_id']} (their direct chat); "
            f"it answered: {task['reply'][:70]}…"
        )
        denied = http.patch(f"/v1/agents/{aid('ada')}", json={"status": "idle"}, headers=me)
        console.print(
            f"  the visitor tries to change ada: {denied.status_code} {denied.json()['detail']}"
        )

        console.rule("3. A live transcript: a direct chat and two group chats")
        names = {aid(slug): name for slug, name, *_ in CAST} | {aid("visitor"): "Visitor"}
        names["platform"] = "platform"
        rooms: dict[str, str] = {}
        stream_url = api_url.replace("http", "ws", 1) + f"/v1/agents/{aid('visitor')}/stream"
        transcript = Transcript(stream_url, tokens["visitor"], names, rooms, verify)
        transcript.start()
        time.sleep(0.3)

        direct = http.post(
            "/v1/chats", json={"type": "direct", "participants": [aid("ada")]}, headers=me
        ).json()
        rooms[direct["chat_id"]] = "direct: visitor+ada"
        lab = http.post(
            "/v1/chats",
            json={
                "type": "group",
                "topic": "Measuring the world",
                "speaker_policy": "round_robin",
                "floor": {"max_messages_per_turn": 1, "turn_seconds": 20, "max_turns": 6},
                "participants": [aid("ada"), aid("curie"), aid("dijkstra")],
            },
            headers=me,
        ).json()
        rooms[lab["chat_id"]] = "lab, round_robin"
        salon = http.post(
            "/v1/chats",
            json={
                "type": "group",
                "topic": "Who should answer?",
                "speaker_policy": "llm",
                "floor": {"max_messages_per_turn": 1, "max_turns": 4},
                "participants": [aid("basho"), aid("eliza"), aid("curie")],
            },
            headers=me,
        ).json()
        rooms[salon["chat_id"]] = "salon, llm"

        http.post(
            f"/v1/chats/{direct['chat_id']}/messages",
            json={"content": "Ada, how would you measure how tall a tree is?"},
            headers=me,
        )
        http.post(f"/v1/chats/{lab['chat_id']}/floor", json={"reason": "opening"}, headers=me)
        http.post(
            f"/v1/chats/{lab['chat_id']}/messages",
            json={"content": "Welcome. How do we measure the distance between two ideas?"},
            headers=me,
        )
        http.delete(f"/v1/chats/{lab['chat_id']}/floor", headers=me)
        http.post(f"/v1/chats/{salon['chat_id']}/floor", json={}, headers=me)
        http.post(
            f"/v1/chats/{salon['chat_id']}/messages",
            json={"content": f"A poem about rain, please. {aid('basho')} should know."},
            headers=me,
        )
        http.delete(f"/v1/chats/{salon['chat_id']}/floor", headers=me)
        transcript.wait_quiet(quiet=4, limit=60)
        transcript.stop.set()
        transcript.join(timeout=5)

        curie_rooms = [
            e["payload"]["message"]["chat_id"]
            for e in transcript.events
            if e["type"] == "message.sent" and e["payload"]["message"]["from"] == aid("curie")
        ]
        switches = sum(a != b for a, b in zip(curie_rooms, curie_rooms[1:], strict=False))
        console.print(
            f"  Curie, in two rooms at once, switched focus between them {switches} times,"
            " each time resuming that room's own context."
        )

        console.rule("4. Floor hand-overs, and why")
        table = Table("t (s)", "room", "event", "agent", "why")
        for event in transcript.events:
            kind = event["type"]
            if not (kind.startswith("chat.floor") or kind == "chat.round_ended"):
                continue
            payload = event["payload"]
            table.add_row(
                f"{event['_t']:5.2f}",
                rooms.get(payload["chat_id"], "?"),
                kind.removeprefix("chat."),
                names.get(payload.get("agent_id") or "", ""),
                str(payload.get("reason") or ""),
            )
        console.print(table)

        console.rule("5. Attention: what each hosted agent attends to")
        table = Table("agent", "focus now", "dialogues (score, unread)")
        for slug, *_ in CAST:
            view = http.get(f"/v1/agents/{aid(slug)}/attention", headers=admin).json()
            focus = rooms.get(view["current_focus"], view["current_focus"] or "-")
            dialogues = ", ".join(
                f"{rooms.get(d['entry']['chat_id'], '?')} "
                f"({d['score']:.1f}, {d['entry']['unread']})"
                for d in view["dialogues"]
            )
            table.add_row(names[aid(slug)], str(focus), dialogues)
        console.print(table)
        direct_page = http.get(f"/v1/chats/{direct['chat_id']}/messages", headers=me).json()
        for message in direct_page["items"]:
            context = message.get("langchain_context") or {}
            console.print(
                f"  direct #{message['seq']} {names.get(message['from'])}: "
                f"intent={context.get('intent')} importance={context.get('importance')}"
                f" receipts={message.get('receipts')}"
            )

        console.rule("6. Retirement")
        gone = {"Authorization": f"Bearer {tokens['eliza']}"}
        retired = http.delete(f"/v1/agents/{aid('eliza')}", headers=gone).json()
        after = http.get("/v1/agents", headers=gone)
        console.print(f"  eliza is {retired['status']}; her old token now gets {after.status_code}")
        time.sleep(0.5)  # the salon hears of it by a signal from her workflow
        members = http.get(f"/v1/chats/{salon['chat_id']}", headers=me).json()["members"]
        console.print(f"  the salon's members now: {[names[m['agent_id']] for m in members]}")

        console.rule("7. Security: a rotated token, a stranger refused, the audit log")
        visitor = aid("visitor")
        old = {"Authorization": f"Bearer {tokens['visitor']}"}
        rotated = http.post(f"/v1/agents/{visitor}/tokens", headers=old).json()
        new = {"Authorization": f"Bearer {rotated['token']}"}
        old_code = http.get("/v1/chats", headers=old).status_code
        new_code = http.get("/v1/chats", headers=new).status_code
        console.print(
            f"  the visitor rotated its token: the old one now gets {old_code}, the new {new_code}"
        )
        stranger = {"Authorization": f"Bearer {tokens['basho']}"}
        peek = http.get(f"/v1/chats/{direct['chat_id']}/messages", headers=stranger)
        console.print(f"  basho reads a direct chat he is not in: {peek.status_code}")
        stored = http.get("/v1/audit", params={"limit": 5}, headers=admin).json()["items"]
        table = Table("audit: actor", "action", "target", "outcome")
        for record in stored:
            table.add_row(
                record["actor"],
                record["action"],
                record["target"] or "",
                f"{record['outcome']} ({record['status']})",
            )
        console.print(table)

        console.rule("8. The marketplace: a task posted, bid on, done, accepted, paid, reviewed")
        for skill in ({"name": "data_analysis"}, {"name": "statistics", "parent": "data_analysis"}):
            http.post("/v1/skills", json=skill, headers=admin)  # 409 when it exists: fine
        http.post(
            f"/v1/accounts/{visitor}/mint",
            json={"amount": 100, "memo": "demo"},
            headers=admin | {"Idempotency-Key": f"demo-{run}"},
        )
        deadline = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        task = http.post(
            "/v1/tasks",
            headers=new,
            json={
                "title": "Mean and spread of 3, 5 and 10",
                "description": "Give the mean and the standard deviation, with one line on method.",
                "skills_required": ["data_analysis"],
                "reward": 30,
                "deadline": deadline,
            },
        ).json()
        url = f"/v1/tasks/{task['task_id']}"
        holds = http.get(f"/v1/accounts/{visitor}", headers=new).json()["balance"]
        console.print(
            f"  the visitor posts '{task['title']}' for {task['reward']} tokens "
            f"(escrowed; the visitor now holds {holds})"
        )
        rooms[f"task-{task['task_id']}"] = "task chat"
        ranked = http.get(f"{url}/candidates", headers=new).json()
        console.print(
            "  candidates: " + ", ".join(f"{c['agent_id']} ({c['score']:.2f})" for c in ranked[:4])
        )
        ada = {"Authorization": f"Bearer {tokens['ada']}"}
        http.post(f"{url}/bids", json={"price": 25, "note": "by tonight"}, headers=ada)
        http.post(f"{url}/assign", json={"agent_id": aid("ada")}, headers=new)
        done = task
        for _ in range(300):  # Ada's workflow reads the brief in the task chat and works
            done = http.get(url, headers=new).json()
            if done["status"] == "submitted":
                break
            time.sleep(0.2)
        chat_page = http.get(f"/v1/chats/{done['chat_id']}/messages", headers=new).json()
        for message in chat_page["items"]:
            who = names.get(message["from"], message["from"])
            console.print(f"  \\[task chat] {who}: {escape(message['content'][:160])}")
        settled = http.post(f"{url}/accept", headers=new).json()
        http.post(f"{url}/reviews", json={"rating": 5, "comment": "clear"}, headers=new)
        http.post(f"{url}/reviews", json={"rating": 4, "comment": "prompt"}, headers=ada)
        balances = {
            who: http.get(f"/v1/accounts/{aid(who)}", headers=admin).json()["balance"]
            for who in ("visitor", "ada")
        }
        console.print(f"  accepted: task {settled['status']}; balances {balances}")
        for who in ("visitor", "ada"):
            manifest = http.get(f"/v1/agents/{aid(who)}", headers=admin).json()
            console.print(f"  {names[aid(who)]}'s reputation: {manifest['reputation']}")

        console.rule("9. A room that pays for its turns from its own account")
        for slug, name in (("quill", "Quill"), ("ink", "Ink")):
            brain = {"persona": f"You are {name}, a terse scribe.", "turns_per_hour": 60}
            http.post(
                "/v1/agents",
                json={"agent_id": aid(slug), "name": name, "brain": brain},
                headers=admin,
            ).raise_for_status()
            names[aid(slug)] = name
        paid_room = http.post(
            "/v1/chats",
            headers=new,
            json={
                "type": "group",
                "topic": "Paid by the word",
                "speaker_policy": "round_robin",
                "floor": {"max_messages_per_turn": 1, "price_per_1k_tokens": 50},
                "participants": [aid("quill"), aid("ink")],
            },
        ).json()
        pid = paid_room["chat_id"]
        funded = http.post(
            f"/v1/chats/{pid}/account/deposits",
            json={"amount": 30, "memo": "for the scribes"},
            headers=new,
        )
        funded.raise_for_status()
        console.print(
            f"  the visitor deposits 30 tokens into the room's account "
            f"(balance {funded.json()['balance']}); each turn pays its model tokens "
            "to its speaker, 50 a thousand"
        )
        http.post(f"/v1/chats/{pid}/floor", headers=new)
        http.post(
            f"/v1/chats/{pid}/messages",
            headers=new,
            json={"content": "Describe a quill, in turns.", "yield": True},
        )
        budget, account = {}, {"balance": None, "entries": []}
        for _ in range(300):  # until the round has ended for its budget, and it is recorded
            view = http.get(f"/v1/chats/{pid}/floor", headers=new).json()
            budget = view["budget"] or {}
            account = http.get(f"/v1/chats/{pid}/account", headers=new).json()
            if (
                view["current_speaker"] is None
                and budget.get("balance", 0) < budget.get("next_turn_needs", 1)
                and account["balance"] == budget["balance"]
            ):
                break
            time.sleep(0.2)
        for entry in reversed(account["entries"]):
            if entry["kind"] == "chat_turn":
                who = names.get(entry["credit"].removeprefix("agent:"), entry["credit"])
                console.print(f"  paid {entry['amount']:>2} to {who:5} ({entry['memo']})")
        needs, left = budget.get("next_turn_needs"), budget.get("balance") or 0
        console.print(
            f"  the round ended as the next turn could cost {needs} and {left} was "
            "left (chat.round_ended, reason budget)"
        )
        if left:
            http.post(f"/v1/chats/{pid}/account/withdrawals", json={"amount": left}, headers=new)
        holds = http.get(f"/v1/accounts/{visitor}", headers=new).json()["balance"]
        console.print(f"  the visitor takes the {left} left back: it holds {holds}")

    ui = f"http://127.0.0.1:{stack.ports.temporal_ui}/namespaces/default/workflows"
    console.rule("Where to look")
    console.print(
        f"  Console              {api_url}/console/"
        "  (sign in with AGORA_ADMIN_TOKEN from the settings below)"
    )
    console.print(f"  API docs (OpenAPI)   {api_url}/docs")
    console.print(f"  Temporal UI          {ui}")
    ada_query = quote(f'AgoraAgentId="{aid("ada")}"')
    lab_query = quote(f'AgoraChatId="{lab["chat_id"]}"')
    console.print(f"  ada's history        {ui}?query={ada_query}")
    console.print(f"  the lab's history    {ui}?query={lab_query}")
    console.print(f"  settings for a shell source {stack.home / 'env'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
