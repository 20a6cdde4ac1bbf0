"""Screenshots of the Temporal Web UI of the running local stack, for the README.

    make up && make demo && .venv/bin/python tools/screenshots.py

Takes Debian's Chromium (installed here with apt when missing), headless, with the
flags that keep it off the network, and writes docs/screenshots/*.png: an agent found
by its search attribute and a chat found by its id. (A history page keeps a long poll
open, and headless Chromium's --screenshot then never fires: those are not taken.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.stack import Stack  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,900", "--virtual-time-budget=15000", "--hide-scrollbars",
]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)
        found = shutil.which("chromium")
    assert found, "chromium is not installed"
    return found


def newest(stack: Stack, query: str) -> dict:
    temporal = str(Path(sys.executable).parent / "temporal")
    out = subprocess.run(
        [temporal, "workflow", "list", "--address", f"127.0.0.1:{stack.ports.temporal}",
         "--query", query, "--limit", "1", "-o", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = json.loads(out)
    if not rows:
        raise SystemExit(f"no workflow matches {query}: run 'make demo' first")
    return rows[0]["execution"]


def shoot(browser: str, url: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={OUT / name}", url],
            capture_output=True,
            check=True,
            timeout=120,
        )
    print(f"{OUT / name}  <- {url}")


def main() -> None:
    stack = Stack.load(ROOT / ".agora")
    ui = f"http://127.0.0.1:{stack.ports.temporal_ui}/namespaces/default/workflows"
    browser = chromium()
    OUT.mkdir(parents=True, exist_ok=True)
    agent = newest(stack, 'AgoraKind="agent" AND ExecutionStatus="Running"')
    agent_id = agent["workflowId"].split("/", 1)[1]
    chat = newest(stack, 'AgoraKind="chat.group" AND ExecutionStatus="Running"')
    chat_id = chat["workflowId"].split("/", 1)[1]
    agent_query = quote(f'AgoraAgentId="{agent_id}"')
    chat_query = quote(f'AgoraChatId="{chat_id}"')
    shoot(browser, f"{ui}?query={agent_query}", "agent-filter.png")
    shoot(browser, f"{ui}?query={chat_query}", "chat-filter.png")


if __name__ == "__main__":
    main()
