"""Schemathesis over the whole OpenAPI against the running app: no 5xx, and every
response matches the schema the API publishes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    server, admin, tmp_path: Path
):
    report = tmp_path / "schemathesis.json"
    argv = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{server}/openapi.json",
        "--header", f"Authorization: {admin['Authorization']}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", os.environ.get("AGORA_FUZZ_EXAMPLES", "8"),
        "--workers", "2",
        "--seed", os.environ.get("AGORA_FUZZ_SEED", "20261124"),
        "--generation-database", "none",
        "--request-timeout", "30",
        "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=280)
    text = output.decode(errors="replace")
    print(text[-3000:])
    assert process.returncode == 0, text[-6000:]
    assert "API Operations:" in text or "operations" in text.lower()
    assert admin["Authorization"].split()[1] not in text  # sanitized output: no token
