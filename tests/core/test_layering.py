"""The import graph runs one way: workflows -> activities -> adapters, and the names
workflows and activities call each other by live in one leaf (``core.names``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = {"workflows.agent", "workflows.chat", "workflows.task"}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_no_activity_imports_a_workflow_module():
    for path in (ROOT / "activities").glob("*.py"):
        bad = {m for m in imports_of(path) if m == "workflows" or m.startswith("workflows.")}
        assert not bad, (path.name, bad)


def test_no_workflow_imports_another_and_names_are_a_leaf():
    for path in (ROOT / "workflows").glob("*.py"):
        module = f"workflows.{path.stem}"
        others = (imports_of(path) & WORKFLOWS) - {module}
        assert not others, (path.name, others)
    assert all(
        not m.startswith(("workflows", "activities", "api", "models", "persistence"))
        for m in imports_of(ROOT / "core" / "names.py")
    )


def test_the_adapters_import_no_workflow_activity_or_api_module():
    for package in ("models", "persistence", "bus", "llm", "core"):
        for path in (ROOT / package).glob("*.py"):
            bad = {
                m
                for m in imports_of(path)
                if m.split(".")[0] in ("workflows", "activities", "api", "workers")
            }
            assert not bad, (f"{package}/{path.name}", bad)
