"""The console in a real browser: Playwright driving Debian's Chromium against the API
served on a free loopback port, with the worker behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from cli.browser import chromium_args, chromium_path
from core.security import TokenCodec
from tests.helpers import group, introduce


def chromium() -> str:
    path = chromium_path()
    assert path, "chromium is not installed: make setup installs Debian's package"
    return path


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium(), args=chromium_args()
        )
        try:
            yield launched
        finally:
            await launched.close()


class Tab:
    """One browser context (its own session storage), and every URL its pages asked for."""

    def __init__(self, page: Page, server: str) -> None:
        self.page, self.server, self.urls = page, server, []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda socket: self.urls.append(socket.url))

    async def sign_in(self, token: str) -> None:
        await self.page.goto(f"{self.server}/console/")
        await self.page.get_by_label("Token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()

    async def open(self, route: str) -> None:
        await self.page.evaluate("route => { location.hash = route }", route)

    def all_local(self) -> bool:
        return all(urlparse(url).hostname == "127.0.0.1" for url in self.urls)


async def tab(browser, server) -> Tab:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    return Tab(await context.new_page(), server)


async def test_an_admin_and_a_member_see_a_room_live_and_the_floor_queue_change_in_both(
    http, server, browser, admin
):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    chat = await group(http, ada, bob, topic="live room", speaker_policy="moderator")
    chat_id = chat["chat_id"]
    floor = f"/v1/chats/{chat_id}/floor"
    watcher = await tab(browser, server)
    await watcher.sign_in(admin["Authorization"].removeprefix("Bearer "))
    agents = watcher.page.get_by_role("table", name="Agents")
    await expect(agents).to_contain_text("Ada")
    await expect(agents).to_contain_text("Bob")
    await watcher.open(f"#/room/{chat_id}")
    await expect(watcher.page.get_by_role("heading", name="live room")).to_be_visible()
    await expect(watcher.page.locator("#link")).to_have_text("live")

    await http.post(floor, json={}, headers=ada.headers)
    held = await http.post(f"{floor}/grant", json={"agent_id": ada.agent_id}, headers=admin)
    assert held.json()["current_speaker"] == ada.agent_id, held.text
    posted = await http.post(
        f"/v1/chats/{chat_id}/messages", json={"content": "hello, watchers"}, headers=ada.headers
    )
    assert posted.status_code == 201, posted.text
    transcript = watcher.page.get_by_role("log", name="Transcript")
    await expect(transcript).to_contain_text("hello, watchers")

    member = await tab(browser, server)
    await member.sign_in(bob.token)
    await expect(member.page.locator("#whoami")).to_have_text(f"signed in as agent:{bob.agent_id}")
    await member.open(f"#/room/{chat_id}")
    await expect(member.page.get_by_role("log", name="Transcript")).to_contain_text(
        "hello, watchers"
    )
    await expect(member.page.locator("#link")).to_have_text("live")
    second = await http.post(
        f"/v1/chats/{chat_id}/messages", json={"content": "second line"}, headers=ada.headers
    )
    assert second.status_code == 201, second.text
    for page in (watcher.page, member.page):
        await expect(page.get_by_role("log", name="Transcript")).to_contain_text("second line")

    # every control of the room has a name a screen reader reads
    unnamed = await member.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button, a')]
          .filter(e => !e.closest('[hidden]'))
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.textContent.trim())
          .map(e => e.outerHTML)"""
    )
    assert unnamed == []
    # ada holds the floor; bob asks from the console and waits in the queue both tabs show
    await expect(member.page.locator("#floor-holder")).to_have_text(ada.agent_id)
    await member.page.get_by_role("button", name="Ask for the floor").click()
    for page in (member.page, watcher.page):
        await expect(page.locator("#floor-queue")).to_contain_text(bob.agent_id)
    # ada yields; the admin grants from the console: bob holds the floor in both tabs
    await http.delete(floor, headers=ada.headers)
    await watcher.page.get_by_role("button", name=f"Grant the floor to {bob.agent_id}").click()
    for page in (member.page, watcher.page):
        await expect(page.locator("#floor-holder")).to_have_text(bob.agent_id)
    assert watcher.all_local() and member.all_local(), watcher.urls + member.urls


async def test_a_strangers_token_sees_no_private_room_and_is_told_why(http, server, browser, admin):
    ada, bob, cy = [await introduce(http, admin, n) for n in ("Ada", "Bob", "Cy")]
    chat = await group(http, ada, bob, topic="just us", join_rule="invite")
    stranger = await tab(browser, server)
    await stranger.sign_in(cy.token)
    await stranger.open("#/rooms")
    await expect(stranger.page.get_by_text("No rooms you may see.")).to_be_visible()
    await stranger.open(f"#/room/{chat['chat_id']}")
    await expect(
        stranger.page.get_by_role("alert").filter(has_text="chat not found")
    ).to_be_visible()
    await expect(stranger.page.get_by_text("just us")).to_have_count(0)
    assert stranger.all_local()


async def test_an_expired_or_revoked_token_returns_to_the_sign_in_with_the_reason(
    http, server, browser, admin, settings
):
    ada = await introduce(http, admin, "Ada")
    lifetime = timedelta(seconds=settings.token_ttl_seconds)
    expired = TokenCodec(settings).issue(
        ada.agent_id, "agent", now=datetime.now(UTC) - lifetime - timedelta(minutes=5)
    )
    visitor = await tab(browser, server)
    await visitor.sign_in(expired.token)
    await expect(visitor.page.locator("#signin-reason")).to_have_text("token expired")
    await expect(visitor.page.get_by_role("navigation", name="Views")).to_be_hidden()

    await visitor.sign_in(ada.token)
    await expect(visitor.page.get_by_role("table", name="Agents")).to_contain_text("Ada")
    rotated = await http.post(f"/v1/agents/{ada.agent_id}/tokens", headers=ada.headers)
    assert rotated.status_code == 201, rotated.text
    await visitor.open("#/market")
    await expect(visitor.page.locator("#signin-reason")).to_have_text("token revoked")
    stored = await visitor.page.evaluate("() => Object.keys(sessionStorage)")
    assert stored == []  # nothing of the old token is kept
    assert visitor.all_local()


async def test_a_refused_post_keeps_the_text_and_says_why(http, server, browser, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    chat = await group(http, ada, bob, topic="turns", speaker_policy="fifo")
    await http.post(f"/v1/chats/{chat['chat_id']}/floor", json={}, headers=ada.headers)
    member = await tab(browser, server)
    await member.sign_in(bob.token)
    await member.open(f"#/room/{chat['chat_id']}")
    box = member.page.get_by_label(f"Post as {bob.agent_id}")
    # by keyboard alone: type in the box, Tab to Post, Enter
    await box.focus()
    await member.page.keyboard.type("may I?")
    await member.page.keyboard.press("Tab")
    await expect(member.page.get_by_role("button", name="Post", exact=True)).to_be_focused()
    await member.page.keyboard.press("Enter")
    await expect(member.page.locator("#post-error")).to_contain_text("floor")
    await expect(box).to_have_value("may I?")
    messages = await http.get(f"/v1/chats/{chat['chat_id']}/messages", headers=bob.headers)
    assert messages.json()["items"] == []


async def test_a_dropped_stream_says_reconnecting_and_misses_nothing(http, server, browser, admin):
    ada, bob = [await introduce(http, admin, n) for n in ("Ada", "Bob")]
    chat = await group(http, ada, bob, topic="flaky")
    base = f"/v1/chats/{chat['chat_id']}/messages"
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    sockets = []

    async def through(route) -> None:
        sockets.append(route)
        route.connect_to_server()

    await context.route_web_socket("**/v1/observe*", through)
    watcher = Tab(await context.new_page(), server)
    await watcher.sign_in(bob.token)
    await watcher.open(f"#/room/{chat['chat_id']}")
    await expect(watcher.page.locator("#link")).to_have_text("live")
    await http.post(base, json={"content": "before the drop"}, headers=ada.headers)
    transcript = watcher.page.get_by_role("log", name="Transcript")
    await expect(transcript).to_contain_text("before the drop")

    await sockets[-1].close(code=4000, reason="dropped")
    await expect(watcher.page.locator("#link")).to_have_text("reconnecting…")
    for i in range(3):
        await http.post(base, json={"content": f"while away {i}"}, headers=ada.headers)
    await expect(watcher.page.locator("#link")).to_have_text("live")
    await http.post(base, json={"content": "after the drop"}, headers=ada.headers)
    await expect(transcript).to_contain_text("after the drop")
    for i in range(3):
        await expect(transcript).to_contain_text(f"while away {i}")
    seqs = await transcript.locator(".msg").evaluate_all("rows => rows.map(r => r.dataset.seq)")
    assert seqs == ["1", "2", "3", "4", "5"]  # each once, in order
    assert watcher.all_local()
