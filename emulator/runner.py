"""Run ``entrypoint.py`` the way a GitHub runner runs the container's entrypoint:
inputs in ``INPUT_*`` variables (hyphens kept), every input action.yml declares
among them (the step's ``with:`` value, else the input's default, else empty),
a ``GITHUB_OUTPUT`` file, a job summary file, and a working directory that has
nothing to do with the action."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import yaml

if TYPE_CHECKING:
    from .core import Emulator

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint.py"
ACTION_YML = ROOT / "action.yml"
TOKEN = "cs-e2e-token-6b1f0d2c"
SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
APP = "shop"  # the app of the runner's releases (GITHUB_REPOSITORY acme/shop)


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float
    ended: float = 0.0  # time.monotonic() when the process had exited (the emulator's clock)

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]

    @property
    def status(self) -> str:
        return self.outputs.get("status", "")

    def assert_no_token(self, token: str = TOKEN) -> None:
        """The token appears nowhere but in the ``::add-mask::`` line."""
        for line in self.stdout.splitlines():
            if token in line:
                assert line == f"::add-mask::{token}", f"token leaked in: {line}"
        for where, text in (("stderr", self.stderr), ("summary", self.summary)):
            assert token not in text, f"token leaked in {where}"
        assert all(token not in v for v in self.outputs.values()), "token leaked in outputs"

    def assert_one_error(self) -> str:
        assert len(self.errors) == 1, f"expected one ::error, got {self.errors}\n{self.stdout}"
        assert "Traceback" not in self.stdout + self.stderr
        return self.errors[0]


def parse_outputs(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        match = re.fullmatch(r"([A-Za-z0-9_-]+)<<(.+)", line)
        if match:
            name, delimiter = match.groups()
            value = []
            while lines[index] != delimiter:
                value.append(lines[index])
                index += 1
            index += 1
            result[name] = "\n".join(value)
        elif "=" in line:
            name, value_text = line.split("=", 1)
            result[name] = value_text
    return result


@cache
def action_defaults() -> dict[str, str]:
    """What the runner passes for each input action.yml declares that the step's
    ``with:`` leaves out: its ``default``, or empty when it has none (the
    runner's ``EvaluateDefaultInput``). An input action.yml does not declare
    arrives only when ``with:`` names it (the runner warns "Unexpected input")."""
    declared = yaml.safe_load(ACTION_YML.read_text())["inputs"]
    return {name: _text(spec.get("default", "")) for name, spec in declared.items()}


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class Runner:
    """Prepares the runner-like environment in a temporary directory.
    ``defaults=False`` passes only the inputs given (an older runner's view,
    for tests of the action's own fallbacks)."""

    def __init__(self, tmp: Path, *, defaults: bool = True) -> None:
        self.tmp = tmp
        self.defaults = defaults
        self.workdir = tmp / "github-workspace"
        self.workdir.mkdir(exist_ok=True)
        self.output_file = tmp / "output"
        self.summary_file = tmp / "summary"

    def environ(
        self, inputs: dict[str, str], extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        self.output_file.write_text("")
        self.summary_file.write_text("")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp),
            "GITHUB_OUTPUT": str(self.output_file),
            "GITHUB_STEP_SUMMARY": str(self.summary_file),
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_SHA": SHA,
            "GITHUB_REF_NAME": "main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_EVENT_NAME": "push",
        }
        given = {**(action_defaults() if self.defaults else {}), **inputs}
        for name, value in given.items():
            env["INPUT_" + name.upper()] = value
        env.update(extra or {})
        return env

    def run(
        self, inputs: dict[str, str], extra: dict[str, str] | None = None, timeout: float = 90
    ) -> ActionRun:
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(ENTRYPOINT)],
            cwd=self.workdir,
            env=self.environ(inputs, extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return self.result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def start(
        self, inputs: dict[str, str], extra: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(ENTRYPOINT)],
            cwd=self.workdir,
            env=self.environ(inputs, extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cancel(
        self, proc: subprocess.Popen[str], sig: signal.Signals, timeout: float = 10
    ) -> tuple[ActionRun, float]:
        """Send ``sig`` as the runner does; return the run and seconds until exit."""
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=timeout)
        took = time.monotonic() - sent
        return self.result(proc.returncode, stdout, stderr, took), took

    def result(self, code: int, stdout: str, stderr: str, seconds: float) -> ActionRun:
        return ActionRun(
            returncode=code,
            stdout=stdout,
            stderr=stderr,
            outputs=parse_outputs(self.output_file.read_text()),
            summary=self.summary_file.read_text(),
            seconds=seconds,
            ended=time.monotonic(),
        )


def mark(
    *,
    repo: str = "acme/shop",
    flow: str = "zero-downtime",
    run: str = "1.1",
    state: str = "released",
    pr: int | None = None,
    commit: str = SHA[:12],
    domain: str | None = None,
    path: str = "/",
    started: str | None = None,
    app: str | None = None,
    previous: tuple[int, ...] = (),
) -> dict[str, str]:
    """The env of a workspace the action created (its ``CODESPHERE_RELEASE`` mark),
    for ``Emulator.add_workspace(env=...)``. The runner's run is ``1.1``.
    ``domain`` (and ``path``): the route a release was made for; ``started``: when
    the release started (``stamp()``), None for a mark of an older version of the
    action, which recorded neither; ``app``: the app the release is of (the
    action's own runs: ``APP``), None for a mark of a version before it had one;
    ``previous``: the workspaces its switch replaced."""
    value = f"repo={repo} flow={flow} run={run} commit={commit}"
    value += f" pr={pr}" if pr is not None else ""
    value += f" app={app}" if app is not None else ""
    value += f" previous={','.join(map(str, previous))}" if previous else ""
    value += f" domain={domain} path={path}" if domain is not None else ""
    value += f" state={state}"
    value += f" started={started}" if started is not None else ""
    return {"CODESPHERE_RELEASE": value}


def stamp(seconds_ago: float = 0.0) -> str:
    """A mark's ``started``: UTC with milliseconds, ``seconds_ago`` before now
    (negative: in the future, a release that starts after this test's runs)."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def start_app(emu: Emulator, workspace_id: int, token: str = TOKEN) -> None:
    """Start the run stage of a workspace as it runs before a release (the live app),
    and wait until it is up; the requests are cleared afterwards."""
    response = requests.post(
        f"{emu.url}/workspaces/{workspace_id}/pipeline/run/start",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    response.raise_for_status()
    deadline = time.monotonic() + 10
    while (run := emu.stage_run(workspace_id, "run")) is None or run.up_at is None:
        assert time.monotonic() < deadline, "the app never came up"
        time.sleep(0.02)
    emu.clear_requests()


STARTED = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
MARK_ID = re.compile(rf" started={STARTED} id=[0-9a-f]{{8}}$")


def without_id(body: Any) -> Any:
    """``body`` (a create body, an env mapping) with the mark's per-run values, its
    ``started`` and ``id``, taken out, after checking they are there: the rest of
    the mark can then be compared."""
    if isinstance(body, dict) and "env" in body:
        return {**body, "env": [without_id(item) for item in body["env"]]}
    if isinstance(body, dict) and body.get("name") == "CODESPHERE_RELEASE":
        assert MARK_ID.search(body["value"]), body
        return {**body, "value": MARK_ID.sub("", body["value"])}
    if isinstance(body, dict) and "CODESPHERE_RELEASE" in body:
        assert MARK_ID.search(body["CODESPHERE_RELEASE"]), body
        return {**body, "CODESPHERE_RELEASE": MARK_ID.sub("", body["CODESPHERE_RELEASE"])}
    return body
