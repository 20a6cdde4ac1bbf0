"""Screenshots of the console and of the Temporal Web UI of the running local stack,
for the README.

    make demo && .venv/bin/python tools/screenshots.py

Takes Debian's Chromium (installed here with apt when missing), headless, with the
flags that keep it off the network, and writes docs/screenshots/*.png: each view of the
console signed in as the admin (driven by Playwright, as the browser tests are), an agent
found by its search attribute in the Temporal UI and a chat found by its id. (A history
page keeps a long poll open, and headless Chromium's --screenshot then never fires:
those are not taken.)
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

from cli.browser import OFF_THE_NETWORK, chromium_args  # noqa: E402
from cli.stack import Stack  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    *OFF_THE_NETWORK,
    "--window-size=1400,900",
    "--virtual-time-budget=15000",
    "--hide-scrollbars",
]


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
        [
            temporal,
            "workflow",
            "list",
            "--address",
            f"127.0.0.1:{stack.ports.temporal}",
            "--query",
            query,
            "--limit",
            "1",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
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


def console_views(browser: str, stack: Stack) -> None:
    """Each view of the console, signed in as the admin, at 1280 x 800."""
    import httpx
    from playwright.sync_api import sync_playwright

    env = stack.env()
    base, token = env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"]
    admin = {"Authorization": f"Bearer {token}"}
    chats = httpx.get(f"{base}/v1/chats?limit=50", headers=admin).json()["items"]
    room = next((c for c in chats if c["speaker_policy"] == "round_robin"), chats[0])
    agents = httpx.get(f"{base}/v1/agents?limit=50", headers=admin).json()["items"]
    agent = next((a for a in agents if a["hosted"] and a["status"] != "retired"), agents[0])
    with sync_playwright() as playwright:
        chromium_ = playwright.chromium.launch(executable_path=browser, args=chromium_args())
        page = chromium_.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/console/")
        page.screenshot(path=OUT / "console-sign-in.png")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("table", name="Agents").locator("tbody tr").first.wait_for()
        views = [
            ("society", "#/society"),
            ("room", f"#/room/{room['chat_id']}"),
            ("agent", f"#/agent/{agent['agent_id']}"),
            ("market", "#/market"),
            ("events", "#/events"),
            ("health", "#/health"),
        ]
        for name, route in views:
            page.evaluate("route => { location.hash = route }", route)
            page.wait_for_timeout(1500)
            if name == "market" and page.locator("details").count():
                page.locator("details summary").first.click()
                page.wait_for_timeout(800)
            if name == "events":  # something on the bus to show: the admin says so
                httpx.post(
                    f"{base}/v1/chats/{room['chat_id']}/messages",
                    json={"content": "The console is watching."},
                    headers=admin,
                )
                page.wait_for_timeout(1500)
            if name == "health":  # a little traffic, so the charts have something to draw
                for i in range(20):
                    httpx.post(
                        f"{base}/v1/chats/{room['chat_id']}/messages",
                        json={"content": f"tick {i}"},
                        headers=admin,
                    )
                    page.wait_for_timeout(300)
            page.screenshot(path=OUT / f"console-{name}.png")
            print(f"{OUT / f'console-{name}.png'}  <- {base}/console/{route}")
        chromium_.close()


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
    console_views(browser, stack)


if __name__ == "__main__":
    main()
