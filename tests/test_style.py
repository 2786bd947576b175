"""The house rules of STYLE.md, checked: layers by import, activity shapes, timeouts, docstrings, typing."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["tenantmove", "activities", "workflows", "console", "stagesub", "api"]


def _modules() -> list[Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return files + [ROOT / "worker.py", ROOT / "starter.py"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_layers_by_import():
    for path in (ROOT / "tenantmove").rglob("*.py"):
        assert not any(name.startswith("temporalio") for name in _imports(path)), f"{path} imports temporalio"
        assert not any(name.split(".")[0] in ("activities", "workflows", "console", "api") for name in _imports(path)), path
    for path in (ROOT / "activities").rglob("*.py"):
        assert "psycopg.sql" not in _imports(path), f"{path}: activities hold no SQL"
        assert not any(name.split(".")[0] in ("workflows", "console", "api") for name in _imports(path)), path
    for path in (ROOT / "workflows").rglob("*.py"):
        assert not any(name.split(".")[0] in ("console", "api") for name in _imports(path)), path
    for path in (ROOT / "console").rglob("*.py"):
        assert not any(name.split(".")[0] == "api" for name in _imports(path)), f"{path}: the API sits above console"
    for path in (ROOT / "api").rglob("*.py"):
        # The API talks to Temporal through the client helpers and shares console's read paths; it never
        # reaches into workflow code, activity implementations, or the database.
        for name in _imports(path):
            if name.split(".")[0] == "workflows":
                assert name.startswith(("workflows.client", "workflows.steps")), f"{path} imports {name}"
            if name.split(".")[0] == "activities":
                assert name.startswith("activities.models"), f"{path} imports {name}"
            assert not name.startswith("psycopg"), f"{path} imports {name}"


def test_every_activity_takes_one_frozen_input_and_returns_a_result():
    import worker
    from activities.common import Deps

    for fn in worker.activities_for(typing.cast(Deps, None)):
        hints = typing.get_type_hints(fn)
        argument, result = hints["input"], hints["return"]
        assert issubclass(argument, BaseModel) and argument.model_config.get("frozen"), fn.__name__
        assert argument.__name__.endswith("Input") and result.__name__.endswith("Result"), fn.__name__


def test_every_activity_call_sets_a_timeout_and_a_retry_policy():
    for path in (ROOT / "workflows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "").startswith("execute_activity"):
                keywords = {k.arg for k in node.keywords}
                assert {"start_to_close_timeout", "retry_policy"} <= keywords, f"{path}:{node.lineno}"


def test_modules_open_with_a_unique_one_line_docstring():
    seen: dict[str, Path] = {}
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path} has no module docstring"
        first = doc.splitlines()[0]
        assert first not in seen, f"{path} and {seen[first]} open with the same docstring"
        seen[first] = path


def test_no_sql_formatted_into_strings():
    for path in _modules():
        text = path.read_text()
        assert 'execute(f"' not in text and "execute(f'" not in text, path
        assert "Optional[" not in text, path


def test_mypy_strict_passes():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
