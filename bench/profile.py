"""Where the time goes: py-spy samples of the worker and the API while a load runs.

    make up && python -m bench.profile [seconds]    # in another shell: BENCH_SIZE=quick make bench

Samples both processes of ``make up`` (py-spy, the ``bench`` extra; it needs ptrace),
then prints, per process, the share of samples by package (inclusive: a sample counts for
every package on its stack) and the hottest leaf functions. The CPU split between the
processes (and Temporal, FerretDB and RabbitMQ) comes from ``/proc`` over the same window.
It only reads the processes ``make up`` started (FerretDB with ``--telemetry=disable``).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli.stack import PROJECT_ROOT, Stack

PACKAGES = (
    "temporalio",
    "pymongo",
    "aio_pika",
    "aiormq",
    "pamqp",
    "pydantic",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "cryptography",
    "jwt",
    "langchain",
    "json",
    "asyncio",
    "workflows",
    "activities",
    "persistence",
    "bus",
    "api",
    "models",
    "core",
    "logging",
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process with all its descendants (PostgreSQL's
    backends, RabbitMQ's Erlang VM under its start script)."""
    parents: dict[int, int] = {}
    own: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        own[pid] = (int(fields[11]) + int(fields[12])) / tick
    totals = {}
    for name, root in pids.items():
        total = 0.0
        for pid, seconds in own.items():
            walk = pid
            while walk > 1 and walk != root:
                walk = parents.get(walk, 0)
            total += seconds if walk == root else 0.0
        totals[name] = total
    return totals


def summarize(raw: Path) -> tuple[int, collections.Counter, collections.Counter]:
    total, by_package, leaves = 0, collections.Counter(), collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        seen = {
            p for p in PACKAGES for f in frames if f"/{p}/" in f or f"({p}" in f or f" ({p}." in f
        }
        for package in seen:
            by_package[package] += n
        leaves[frames[-1]] += n
    return total, by_package, leaves


def main(seconds: int) -> None:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is the bench extra: pip install -e '.[bench]'")
    stack = Stack.load(PROJECT_ROOT / ".agora")
    pids = {
        name: stack.owned_pid(name)
        for name in ("worker", "api", "temporal", "ferretdb", "rabbitmq")
    }
    pids = {k: v for k, v in pids.items() if v}
    out = Path(tempfile.mkdtemp(prefix="agora-profile-"))
    before = {k: cpu_seconds(v) for k, v in pids.items()}
    started = time.monotonic()
    spies = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pids[name]),
                "--duration",
                str(seconds),
                "--rate",
                "50",
                "--format",
                "raw",
                "--output",
                str(out / f"{name}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("worker", "api")
        if name in pids
    ]
    for process in spies:
        process.wait()
    elapsed = time.monotonic() - started
    print(f"CPU over {elapsed:.0f} s ({os.cpu_count()} cores), seconds of CPU per second:")
    for name, pid in pids.items():
        try:
            print(f"  {name:9} {(cpu_seconds(pid) - before[name]) / elapsed:5.2f}")
        except OSError:
            print(f"  {name:9} (gone)")
    for name in ("worker", "api"):
        raw = out / f"{name}.txt"
        if not raw.exists():
            continue
        total, by_package, leaves = summarize(raw)
        print(f"\n{name}: {total} samples; share of samples with the package on the stack")
        for package, n in by_package.most_common(12):
            print(f"  {package:13} {100 * n / total:5.1f} %")
        print(f"{name}: hottest leaf frames")
        for frame, n in leaves.most_common(8):
            print(f"  {100 * n / total:5.1f} %  {frame[:110]}")
    print(
        f"\nraw samples in {out}\nreproduce: make up && python -m bench.profile {seconds} "
        "(while BENCH_SIZE=quick make bench runs)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
