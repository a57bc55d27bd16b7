"""The package's shape, kept true by tests (issue 19):

- every call that serves a phase takes its deadline: the type checker rejects
  a client call, a wait, a health check or a GitHub call without one;
- no flow imports another (shared work is a step, ``steps/``);
- modules, classes and functions stay short enough to read at a glance
  (450, 300 and 60 lines).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "codesphere_action"
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 450, 300, 60

WITHOUT_DEADLINES = """
from codesphere_action.api.codesphere import Codesphere
from codesphere_action.github_api import GitHubApi
from codesphere_action.health import HealthCheck
from codesphere_action.waiting import Waiter


def release(client: Codesphere, waiter: Waiter, check: HealthCheck, github: GitHubApi) -> None:
    client.get_workspace(1)
    client.git_pull(1, "origin", "main")
    waiter.poll(lambda deadline: True, what="x")
    check.workspace("1-3000.example.test")
    github.call("GET", "/pulls/1")
"""


def test_the_type_checker_rejects_a_call_without_its_deadline(tmp_path: Path) -> None:
    snippet = tmp_path / "no_deadline.py"
    snippet.write_text(WITHOUT_DEADLINES)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "MYPYPATH": str(REPO)},
    )
    out = proc.stdout
    assert proc.returncode == 1, out
    for call in ("get_workspace", "git_pull", "poll", "call"):
        assert f'Missing named argument "deadline" for "{call}"' in out, out
    assert 'Missing positional argument "deadline" in call to "workspace"' in out, out
    assert out.count("error:") == 5, out


def test_no_flow_imports_another() -> None:
    flows = {p.stem for p in (PACKAGE / "flows").glob("*.py")} - {"__init__", "specs"}
    for flow in sorted(flows):
        tree = ast.parse((PACKAGE / "flows" / f"{flow}.py").read_text())
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level >= 1
        }
        others = (imported & flows) - {flow}
        assert not others, f"flows/{flow}.py imports the flow(s) {sorted(others)}: make it a step"


def test_modules_classes_and_functions_are_short() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(REPO)
        if len(text.splitlines()) > MAX_MODULE:
            long.append(f"{name}: {len(text.splitlines())} lines (module)")
        for node in ast.walk(ast.parse(text)):
            limit = {ast.ClassDef: MAX_CLASS, ast.FunctionDef: MAX_FUNCTION}.get(type(node))
            if limit is None:
                continue
            assert isinstance(node, (ast.ClassDef, ast.FunctionDef))
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > limit:
                long.append(f"{name}:{node.lineno} {node.name}: {size} lines (limit {limit})")
    assert not long, "\n".join(long)
