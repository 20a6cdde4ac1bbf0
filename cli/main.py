"""``agora``: start, stop and inspect the local stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cli import ops
from cli.stack import PROJECT_ROOT, Stack, StackError

app = typer.Typer(
    help="Agora: a durable backend for societies of software agents.", no_args_is_help=True
)
app.add_typer(ops.agents, name="agents")
app.add_typer(ops.chats, name="chats")
app.add_typer(ops.events, name="events")
console = Console()
err = Console(stderr=True)

HomeOption = typer.Option(
    PROJECT_ROOT / ".agora",
    "--home",
    envvar="AGORA_HOME",
    help="Where the local stack keeps its data.",
)


TlsOption = typer.Option(
    False,
    "--tls",
    envvar="AGORA_LOCAL_TLS",
    help="Run every service on TLS with a throwaway CA (API on HTTPS, MongoDB TLS and "
    "SCRAM, AMQPS).",
)


def _refused(exc: StackError) -> NoReturn:
    err.print(f"[red]could not start {exc.service}[/red]")
    err.print(str(exc), markup=False, highlight=False)  # a log's tail, not markup
    raise typer.Exit(1) from exc


def _start(what: str, up: Callable[..., dict[str, str]]) -> None:
    """Run ``up`` under a spinner that shows its progress; print what each part did."""
    try:
        with console.status(f"starting {what}") as status:
            outcome = up(progress=lambda text: status.update(text))
    except StackError as exc:
        _refused(exc)
    width = max(map(len, outcome))
    for name, did in outcome.items():
        console.print(f"  {name:{width}} {did}")


@app.command()
def up(home: Path = HomeOption, tls: bool = TlsOption) -> None:
    """Start Temporal, FerretDB, RabbitMQ, the worker and the API; wait until /readyz is green.

    Every service binds to 127.0.0.1; FerretDB runs with ``--telemetry=disable``."""
    try:
        stack = Stack.load(home, tls=tls)
    except StackError as exc:
        _refused(exc)
    _start("the local stack", stack.up)
    ports = stack.ports
    console.print(
        f"\nAPI docs     {stack.env()['AGORA_API_URL']}/docs\n"
        f"Temporal UI  http://127.0.0.1:{ports.temporal_ui}\n"
        f"Settings     source {stack.home / 'env'}"
    )
    if stack.certs is not None:
        console.print(f"TLS          throwaway CA at {stack.certs.ca_file}")


@app.command()
def down(home: Path = HomeOption) -> None:
    """Stop exactly what 'agora up' started."""
    stopped = Stack.load(home).down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(home: Path = HomeOption) -> None:
    """Show what runs: the stack of 'agora up', and the cluster's parts once 'agora cluster
    up' has run (naming what is degraded; exit 1 when a cluster part is down)."""
    table = Table("service", "state")
    for name, state in Stack.load(home).status().items():
        table.add_row(name, state)
    console.print(table)
    if (home / "cluster" / "cluster.json").exists():
        cluster_status(home / "cluster")


cluster = typer.Typer(
    help="The production-shaped local topology: two APIs behind HAProxy, two workers, a "
    "three-node RabbitMQ cluster with quorum queues.",
    no_args_is_help=True,
)
app.add_typer(cluster, name="cluster")
ClusterHomeOption = typer.Option(
    PROJECT_ROOT / ".agora" / "cluster",
    "--home",
    envvar="AGORA_CLUSTER_HOME",
    help="Where the cluster keeps its data (apart from 'agora up's stack).",
)


@cluster.command("up")
def cluster_up(home: Path = ClusterHomeOption) -> None:
    """Start every part of the cluster on 127.0.0.1; wait until each is ready."""
    from cli.cluster import Cluster

    running = Cluster.load(home)
    _start("the cluster", running.up)
    ports = running.ports
    console.print(
        f"\nAPI (HAProxy)  http://127.0.0.1:{ports.api}/docs\n"
        f"AMQP (HAProxy) 127.0.0.1:{ports.amqp}, nodes on {', '.join(map(str, ports.nodes))}\n"
        f"Temporal UI    http://127.0.0.1:{ports.single.temporal_ui}\n"
        f"Settings       source {running.home / 'env'}"
    )


@cluster.command("down")
def cluster_down(home: Path = ClusterHomeOption) -> None:
    """Stop every part 'agora cluster up' started."""
    from cli.cluster import Cluster

    stopped = Cluster.load(home).down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@cluster.command("status")
def cluster_status(home: Path = ClusterHomeOption) -> None:
    """Show each part, and name what is degraded (exit 1 when a part is down)."""
    from cli.cluster import Cluster

    running = Cluster.load(home)
    states = running.status()
    table = Table("part", "state")
    for name, state in states.items():
        table.add_row(name, state)
    console.print(table)
    degraded = running.degraded(states)
    for line in degraded:
        console.print(f"[yellow]degraded[/yellow]: {line}")
    if degraded:
        raise typer.Exit(1)


@app.command()
def mcp(
    api_url: str = typer.Option(
        "http://127.0.0.1:8000", "--api-url", envvar="AGORA_API_URL", help="The Agora API."
    ),
) -> None:
    """Serve Agora's MCP tools over stdio, for desktop MCP clients: they act as the agent
    whose token is in AGORA_TOKEN (an environment variable, never an argument)."""
    import asyncio
    import os

    from api.mcp_server import build_server, over_http

    token = os.environ.get("AGORA_TOKEN")
    if not token:
        err.print("set AGORA_TOKEN to the agent's token")
        raise typer.Exit(2)
    asyncio.run(build_server(over_http(api_url, token)).run_stdio_async())


if __name__ == "__main__":
    app()
