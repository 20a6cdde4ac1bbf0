"""Schemathesis over the whole OpenAPI against the running app, as an admin and as an
agent: no 5xx, every status documented (no exclusions), every response in its schema.
Besides what it generates, every body also goes out with unpaired surrogates, NUL, bidi
overrides, NaN, infinities and integers past 2^63, and every query with integers past
2^63 (``tests/api/fuzz_hooks.py``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import introduce

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    )
)


@pytest.mark.parametrize("caller", ["admin", "agent"])
async def test_schemathesis_finds_no_server_error_undocumented_status_or_schema_mismatch(
    server, admin, tmp_path: Path, caller
):
    if caller == "agent":
        async with httpx.AsyncClient(base_url=server, timeout=30) as http:
            agent = await introduce(http, admin, "Fuzz")
        authorization = f"Bearer {agent.token}"
    else:
        authorization = admin["Authorization"]
    report = tmp_path / "schemathesis.json"
    argv = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server}/openapi.json",
        "--header",
        f"Authorization: {authorization}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        os.environ.get("AGORA_FUZZ_EXAMPLES", "8"),
        "--workers",
        "2",
        "--seed",
        os.environ.get("AGORA_FUZZ_SEED", "20261124"),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = os.environ | {"SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=280)
    text = output.decode(errors="replace")
    print(text[-3000:])
    assert process.returncode == 0, text[-6000:]
    assert "API Operations:" in text or "operations" in text.lower()
    assert authorization.split()[1] not in text  # sanitized output: no token
