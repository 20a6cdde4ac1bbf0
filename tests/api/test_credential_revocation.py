"""Two API processes keep token checks in memory, and both refuse a revoked token within a
second of its rotation or retirement: the revocation reaches them over the bus."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import httpx

from cli.stack import free_port
from tests.conftest import eventually, settings_env
from tests.helpers import bearer, introduce, leaked_credentials


@contextlib.asynccontextmanager
async def api_process(settings, log_path) -> AsyncIterator[httpx.AsyncClient]:
    """``python -m api`` on a free port (no worker of its own: the test's serves)."""
    port = free_port()
    env = settings_env(settings) | {"AGORA_API_PORT": str(port), "AGORA_API_HOST": "127.0.0.1"}
    with log_path.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", env=env, stdout=out, stderr=out
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def ready() -> int:
                try:
                    return (await http.get("/readyz")).status_code
                except httpx.TransportError:
                    return 0

            await eventually(ready, lambda code: code == 200, timeout=60)
            yield http
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)


async def _checks(http: httpx.AsyncClient) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        if line.startswith("agora_credential_checks{"):
            source = line.split('source="', 1)[1].split('"', 1)[0]
            found[source] = float(line.rsplit(" ", 1)[1])
    return found


async def _refused_within(http: httpx.AsyncClient, path: str, token: str, seconds: float) -> float:
    """Poll until the token gets 401; how long that took from now (fails past ``seconds``)."""
    started = time.monotonic()
    while True:
        status = (await http.get(path, headers=bearer(token))).status_code
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed <= seconds, f"still accepted {elapsed:.2f} s after the revocation"
        await asyncio.sleep(0.02)


async def test_every_api_process_refuses_a_revoked_token_within_a_second(
    settings, worker, admin, tmp_path
):
    async with (
        api_process(settings, tmp_path / "a.log") as a,
        api_process(settings, tmp_path / "b.log") as b,
    ):
        ada = await introduce(a, admin, "Ada")
        me = f"/v1/agents/{ada.agent_id}"
        for http in (a, b):  # both processes have checked the token, and keep the answer
            before = await _checks(http)
            for _ in range(20):
                assert (await http.get(me, headers=ada.headers)).status_code == 200
            after = await _checks(http)
            assert after["store"] - before.get("store", 0) <= 1
            assert after["cache"] - before.get("cache", 0) >= 19

        rotated = await a.post(f"{me}/tokens", headers=ada.headers)
        assert rotated.status_code == 201, rotated.text
        new_token = rotated.json()["token"]
        await _refused_within(b, me, ada.token, 1.0)
        await _refused_within(a, me, ada.token, 1.0)
        assert (await b.get(me, headers=bearer(new_token))).status_code == 200

        retired = await b.delete(me, headers=admin)
        assert retired.status_code == 200, retired.text
        await _refused_within(a, me, new_token, 1.0)
        await _refused_within(b, me, new_token, 1.0)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    assert leaked_credentials(logs, {ada.token, new_token}) == []
