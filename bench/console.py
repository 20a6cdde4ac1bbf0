"""The console's figures in a real browser (Debian's Chromium, driven by Playwright):
what the first load transfers compressed, how soon the page is interactive, and how a
room of 10,000 stored messages opens (at its end, one page) and pages back.

    make up && BENCH_SIZE=quick make bench      (part of the bench)
    .venv/bin/python -m bench.console           (this part alone, on the running stack)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import httpx

from cli.browser import chromium_args, chromium_path


async def _room_of(api: httpx.AsyncClient, admin: dict, settings, messages: int) -> tuple:
    """A group chat of two agents whose store holds ``messages`` messages (written to the
    store directly, as after a long life), and the coroutine that removes it all."""
    from models.chats import Message, message_id_for
    from persistence import MessageRepository, open_database

    run = uuid.uuid4().hex[:6]
    tokens = []
    for name in ("ada", "bob"):
        made = await api.post(
            "/v1/agents", json={"agent_id": f"console-{name}-{run}", "name": name}, headers=admin
        )
        made.raise_for_status()
        tokens.append(made.json()["token"])
    chat = await api.post(
        "/v1/chats",
        json={"type": "group", "participants": [f"console-bob-{run}"], "topic": "long room"},
        headers={"Authorization": f"Bearer {tokens[0]}"},
    )
    chat.raise_for_status()
    chat_id = chat.json()["chat_id"]
    database = await open_database(settings)
    repository = MessageRepository(database)
    now = datetime.now(UTC)
    for start in range(1, messages + 1, 500):
        batch = [
            Message(
                message_id=message_id_for(chat_id, seq),
                chat_id=chat_id,
                seq=seq,
                from_=f"console-ada-{run}",
                timestamp=now,
                message_type="text",
                is_private=False,
                content=f"line {seq} of a long room " + "x" * 80,
            )
            for seq in range(start, min(messages, start + 499) + 1)
        ]
        await repository.store(batch)

    async def remove() -> None:
        await api.delete(f"/v1/chats/{chat_id}", headers=admin)
        await database.db["messages"].delete_many({"chat_id": chat_id})
        await database.close()

    return chat_id, remove


async def console_figures(env: dict[str, str], messages: int = 10_000) -> dict:
    from playwright.async_api import async_playwright

    from core.settings import Settings

    # the stack's own secret: stored messages are sealed with a key derived from it
    settings = Settings(
        mongodb_uri=env["AGORA_MONGODB_URI"], token_secret=env["AGORA_TOKEN_SECRET"]
    )
    api_url, admin_token = env["AGORA_API_URL"], env["AGORA_ADMIN_TOKEN"]
    path = chromium_path()
    if path is None:
        return {"note": "chromium is not installed (make setup installs it)"}
    admin = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        chat_id, remove = await _room_of(api, admin, settings, messages)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=path, args=chromium_args()
                )
                try:
                    return await _measure(browser, api_url, admin_token, chat_id, messages)
                finally:
                    await browser.close()
        finally:
            await remove()


async def _measure(browser, api_url: str, token: str, chat_id: str, messages: int) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    started = time.perf_counter()
    await page.goto(f"{api_url}/console/", wait_until="load")
    await page.get_by_label("Token").wait_for(state="visible")
    interactive_ms = (time.perf_counter() - started) * 1000
    timing = await page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dom_interactive_ms: n.domInteractive, load_ms: n.loadEventEnd}; }"
    )
    first = [await r.request.sizes() for r in responses]
    first_bytes = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in first)

    started = time.perf_counter()
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("table", name="Agents").locator("tbody tr").first.wait_for()
    society_ms = (time.perf_counter() - started) * 1000

    responses.clear()
    started = time.perf_counter()
    await page.evaluate("id => { location.hash = '#/room/' + id }", chat_id)
    transcript = page.get_by_role("log", name="Transcript")
    await transcript.locator(f'[data-seq="{messages}"]').wait_for()
    room_ms = (time.perf_counter() - started) * 1000
    opened = await transcript.locator(".msg").count()
    room_bytes = 0
    for response in responses:
        sizes = await response.request.sizes()
        room_bytes += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    started = time.perf_counter()
    await page.get_by_role("button", name="Load earlier messages").click()
    await transcript.locator(f'[data-seq="{messages - opened}"]').wait_for()
    back_ms = (time.perf_counter() - started) * 1000
    after_back = await transcript.locator(".msg").count()
    await context.close()
    return {
        "first_load_bytes_compressed": first_bytes,
        "first_load_requests": len(first),
        "first_load_interactive_ms": round(interactive_ms, 1),
        "first_load_navigation": timing,
        "sign_in_to_society_ms": round(society_ms, 1),
        "room_messages_stored": messages,
        "room_open_ms": round(room_ms, 1),
        "room_open_messages_loaded": opened,
        "room_open_bytes": room_bytes,
        "room_page_back_ms": round(back_ms, 1),
        "room_messages_after_one_page_back": after_back,
        "targets": "first load ≤ 300 KB compressed, interactive ≤ 1 s",
    }


async def _main(env: dict[str, str]) -> None:
    figures = await console_figures(env)
    print(json.dumps(figures, indent=2))
    print("reproduce: make up && .venv/bin/python -m bench.console")


if __name__ == "__main__":
    from cli.stack import PROJECT_ROOT, Stack

    asyncio.run(_main(Stack.load(PROJECT_ROOT / ".agora").env()))
