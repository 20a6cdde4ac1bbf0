"""``agora agents|chats|events``: the operator's commands, over the API and the bus.

They talk to the stack in ``.agora`` (or ``--home``); ``AGORA_*`` variables in the
environment win, so the same commands operate a deployment. A refusal or an unknown id
is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.stack import PROJECT_ROOT, Stack

console = Console()
err = Console(stderr=True)

HomeOption = typer.Option(
    PROJECT_ROOT / ".agora", "--home", envvar="AGORA_HOME", help="The local stack's folder."
)

agents = typer.Typer(help="Agents: list, show, retire, import.", no_args_is_help=True)
chats = typer.Typer(
    help="Chats: list, show one, print or follow its transcript.", no_args_is_help=True
)
events = typer.Typer(
    help="Events: tail the stream, list and replay dead letters.", no_args_is_help=True
)


def environment(home: Path) -> dict[str, str]:
    env = Stack.load(home).env()
    env.update({k: v for k, v in os.environ.items() if k.startswith("AGORA_")})
    return env


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def api(home: Path) -> Iterator[httpx.Client]:
    env = environment(home)
    ca = env.get("AGORA_TLS_CA_FILE")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
    headers = {"Authorization": f"Bearer {env.get('AGORA_ADMIN_TOKEN', '')}"}
    with httpx.Client(
        base_url=env["AGORA_API_URL"], headers=headers, verify=verify, timeout=30
    ) as client:
        yield client


def call(client: httpx.Client, method: str, path: str, **kwargs) -> dict:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise fail(
            f"the API at {client.base_url} does not answer ({type(exc).__name__})", 2
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise fail(f"{response.status_code}: {detail}")
    return response.json()


# ---- agents ---------------------------------------------------------------------------


@agents.command("list")
def agents_list(
    status: str = typer.Option(None, help="active, busy, idle, offline or retired"),
    name: str = typer.Option(None, "--name", help="name contains"),
    home: Path = HomeOption,
) -> None:
    """The agents, a table (every page)."""
    table = Table("agent", "name", "status", "online", "hosted", "activities")
    params = {k: v for k, v in {"status": status, "q": name, "limit": 200}.items() if v}
    with api(home) as client:
        while True:
            page = call(client, "GET", "/v1/agents", params=params)
            for m in page["items"]:
                table.add_row(
                    m["agent_id"],
                    m["public_profile"]["name"],
                    m["status"],
                    "yes" if m["online_status"] else "no",
                    "yes" if m["hosted"] else "no",
                    ", ".join(m["current_activities"]),
                )
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    console.print(table)


def _read_jsonl(path: Path) -> list[dict]:
    """Every line one agent (the body of ``POST /v1/agents``); a line that is not a JSON
    object stops the import before anything is sent."""
    entries = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise fail(f"{path}:{number}: not a JSON object") from None
        if not isinstance(entry, dict):
            raise fail(f"{path}:{number}: not a JSON object")
        entries.append((number, entry))
    return entries


@agents.command("import")
def agents_import(
    file: Path = typer.Argument(..., help="JSON lines, one agent each (POST /v1/agents)"),
    tokens: Path = typer.Option(
        None, "--tokens", help="Where the new tokens go (default: FILE.tokens.jsonl, 0600)"
    ),
    batch: int = typer.Option(100, min=1, max=100, help="Agents per request"),
    home: Path = HomeOption,
) -> None:
    """Introduce the agents of a JSON-lines file in batches of up to 100, with a progress
    bar. Each batch is all or nothing; a refused one stops the import, naming its line.
    The tokens are written to a file only the caller can read, never printed."""
    entries = _read_jsonl(file)
    if not entries:
        raise fail(f"{file}: no agents in it")
    out = tokens or file.with_suffix(file.suffix + ".tokens.jsonl")
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    done = 0
    columns = (TextColumn("introducing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        api(home) as client,
        os.fdopen(descriptor, "a") as sink,
        Progress(*columns, console=console) as progress,
    ):
        bar = progress.add_task("agents", total=len(entries))
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            response = _send(client, [entry for _, entry in chunk])
            if response.status_code >= 400:
                where = _refused_line(response, chunk)
                detail = _detail(response)
                before = f"{done} introduced before it, tokens in {out}"
                raise fail(f"{file}:{where}: {response.status_code}: {detail} ({before})")
            for created in response.json()["agents"]:
                kept = {k: created[k] for k in ("agent_id", "token", "token_expires_at")}
                sink.write(json.dumps(kept) + "\n")
            sink.flush()
            done += len(chunk)
            progress.advance(bar, len(chunk))
    console.print(f"{done} agents introduced; their tokens are in {out}")


def _send(client: httpx.Client, chunk: list[dict]) -> httpx.Response:
    try:
        return client.post("/v1/agents:batch", json={"agents": chunk}, timeout=120)
    except httpx.HTTPError as exc:
        raise fail(
            f"the API at {client.base_url} does not answer ({type(exc).__name__})", 2
        ) from None


def _detail(response: httpx.Response):
    try:
        return response.json().get("detail")
    except ValueError:
        return response.text


def _refused_line(response: httpx.Response, chunk: list[tuple[int, dict]]) -> int:
    """The file's line of the entry the API named (``agents.<index>``), else the batch's
    first line."""
    detail = _detail(response)
    index = None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = detail[0].get("loc", [])
        if len(loc) > 2 and loc[1] == "agents" and str(loc[2]).isdigit():
            index = int(loc[2])
    elif isinstance(detail, str) and detail.startswith("agents."):
        head = detail.split(":", 1)[0].removeprefix("agents.")
        index = int(head) if head.isdigit() else None
    return chunk[index][0] if index is not None and index < len(chunk) else chunk[0][0]


@agents.command("show")
def agents_show(agent_id: str, home: Path = HomeOption) -> None:
    """One agent's manifest."""
    with api(home) as client:
        console.print_json(data=call(client, "GET", f"/v1/agents/{agent_id}"))


@agents.command("retire")
def agents_retire(
    agent_id: str,
    yes: bool = typer.Option(False, "--yes", help="do not ask"),
    home: Path = HomeOption,
) -> None:
    """Retire an agent: it leaves its chats and its tokens stop working."""
    if not yes:
        typer.confirm(f"retire {agent_id}?", abort=True)
    with api(home) as client:
        manifest = call(client, "DELETE", f"/v1/agents/{agent_id}")
    console.print(f"{manifest['agent_id']} is {manifest['status']}")


# ---- chats ----------------------------------------------------------------------------


@chats.command("list")
def chats_list(home: Path = HomeOption) -> None:
    """The newest chats of the platform, a table."""
    table = Table("chat", "type", "topic", "members", "policy", "closed")
    with api(home) as client:
        for chat in call(client, "GET", "/v1/chats")["items"]:
            table.add_row(
                chat["chat_id"],
                chat["type"],
                chat.get("topic") or "",
                str(len(chat["members"])),
                chat.get("speaker_policy") or "-",
                "yes" if chat["closed"] else "no",
            )
    console.print(table)


@chats.command("show")
def chats_show(chat_id: str, home: Path = HomeOption) -> None:
    """One chat: type, topic, policy and members."""
    with api(home) as client:
        chat = call(client, "GET", f"/v1/chats/{chat_id}")
    console.print(
        f"{chat['chat_id']} ({chat['type']}) {chat.get('topic') or ''} "
        f"policy={chat.get('speaker_policy')} closed={chat['closed']}"
    )
    table = Table("member", "role")
    for member in chat["members"]:
        table.add_row(member["agent_id"], member["role"])
    console.print(table)


@chats.command("transcript")
def chats_transcript(
    chat_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new messages"),
    seconds: float = typer.Option(0, "--for", help="with --follow: stop after this long"),
    home: Path = HomeOption,
) -> None:
    """The chat's messages in order; ``--follow`` keeps printing new ones (Ctrl-C stops)."""
    after = 0
    until = time.monotonic() + seconds if seconds else None
    with api(home) as client:
        while True:
            page = call(
                client,
                "GET",
                f"/v1/chats/{chat_id}/messages",
                params={"after_seq": after, "limit": 200},
            )
            for m in page["items"]:
                console.print(
                    f"#{m['seq']} {m['timestamp'][11:19]} [bold]{escape(m['from'])}"
                    f"[/bold]: {escape(m['content'])}"
                )
                after = m["seq"]
            if page["items"]:
                continue
            if not follow or (until is not None and time.monotonic() > until):
                return
            time.sleep(0.5)


# ---- events ---------------------------------------------------------------------------


def _bus_settings(home: Path):
    from core.settings import Settings

    env = environment(home)
    return Settings(amqp_url=env["AGORA_AMQP_URL"], bus_prefix=env.get("AGORA_BUS_PREFIX", "agora"))


async def _with_bus(home: Path, work):
    from bus import open_bus

    try:
        bus = await open_bus(_bus_settings(home), timeout=10)
    except Exception as exc:
        raise fail(f"RabbitMQ does not answer ({type(exc).__name__})", 2) from None
    try:
        return await work(bus)
    finally:
        await bus.close()


@events.command("tail")
def events_tail(
    types: list[str] = typer.Option(None, "--type", help="event types (repeat); default all"),
    seconds: float = typer.Option(0, "--for", help="stop after this long (default: Ctrl-C)"),
    home: Path = HomeOption,
) -> None:
    """Print events as they are published: time, type, correlation id, payload."""
    from bus import WatchLost, tail_events

    async def show(event) -> None:
        payload = escape(str(event.payload))[:200]
        console.print(
            f"{event.occurred_at:%H:%M:%S} [bold]{event.type}[/bold] "
            f"{event.correlation_id or '-'} {payload}"
        )

    async def watch(bus) -> None:
        stop = asyncio.Event()
        if seconds:
            asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await tail_events(bus, show, types or None, stop)
        except WatchLost:
            lost = "the connection to RabbitMQ was lost: events may have been missed"
            raise fail(lost, 1) from None

    asyncio.run(_with_bus(home, watch))


@events.command("dead")
def events_dead(limit: int = typer.Option(100, min=1, max=10_000), home: Path = HomeOption) -> None:
    """The dead letters: events no consumer could handle (left in place)."""
    from bus import dead_letters

    letters = asyncio.run(_with_bus(home, lambda bus: dead_letters(bus, limit)))
    table = Table("event id", "type", "died in", "reason")
    for letter in letters:
        table.add_row(
            letter.event_id or "-", letter.type or "-", letter.queue or "-", letter.reason or "-"
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@events.command("replay")
def events_replay(
    limit: int = typer.Option(100, min=1, max=10_000), home: Path = HomeOption
) -> None:
    """Send dead letters back where they came from (consumers drop repeats by event id)."""
    from bus import replay_dead_letters

    replayed = asyncio.run(_with_bus(home, lambda bus: replay_dead_letters(bus, limit)))
    for letter in replayed:
        console.print(f"replayed {letter.event_id} ({letter.type}) to {letter.queue}")
    console.print(f"{len(replayed)} replayed")


@events.command("traces")
def events_traces(home: Path = HomeOption) -> None:
    """The API's slowest recent traces (when it traces: AGORA_TRACING=1 or an OTLP endpoint)."""
    with api(home) as client:
        answer = call(client, "GET", "/v1/traces/slowest")
    if not answer["tracing"]:
        console.print("the API does not trace: start it with AGORA_TRACING=1")
        return
    table = Table("ms", "root span", "trace id", "correlation id")
    for trace in answer["traces"]:
        name, correlation = escape(trace["name"]), trace["correlation_id"] or "-"
        table.add_row(f"{trace['ms']:.1f}", name, trace["trace_id"], correlation)
    console.print(table)
