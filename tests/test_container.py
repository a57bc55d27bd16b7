"""The real image, end to end: build the Dockerfile, run it the way a GitHub runner
does, against the Codesphere emulator on the host's loopback.

Engine: podman by default (this machine has no Docker engine and no registry;
``scripts/container-setup.sh`` installs podman and imports a debootstrap stand-in
for the base image). CI on GitHub sets ``CS_CONTAINER_ENGINE=docker`` and builds
from the real base image. Everything this test needs missing -> it FAILS, it never
skips: a release pipeline whose container test quietly skips proves nothing.

Environment knobs:
- ``CS_CONTAINER_ENGINE``: ``podman`` (default) or ``docker``.
- ``CS_BASE_IMAGE``: passed as ``--build-arg BASE_IMAGE``; defaults to the podman
  stand-in, and to the Dockerfile's own default with docker.
- ``CS_CONTAINER_DIR``: the setup script's cache dir (podman config files).
- ``CS_BUILD_CA_BUNDLE``: CA bundle bind-mounted into podman builds so pip in the
  build trusts this machine's TLS proxy (default: the host bundle if present; set
  it to an empty string to not mount one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator import Emulator
from emulator.runner import parse_outputs

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
ENGINE = os.environ.get("CS_CONTAINER_ENGINE", "podman")
CACHE_DIR = Path(os.environ.get("CS_CONTAINER_DIR", "/tmp/cs-container"))
STANDIN_BASE = "localhost/python-standin:bookworm"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
VENV_PYTHON = "/opt/venv/bin/python"
TOKEN = "container-test-token"
# What a runner passes besides the inputs (a subset; the action must not need more).
GITHUB_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "HOME": "/github/home",
    "GITHUB_WORKSPACE": "/github/workspace",
    "GITHUB_REPOSITORY": "octo-org/demo-app",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_OUTPUT": "/github/file_commands/output",
    "GITHUB_STEP_SUMMARY": "/github/file_commands/summary",
}


@dataclass(frozen=True)
class Engine:
    """A container engine binary plus the environment its commands need."""

    exe: str
    env: Mapping[str, str]

    def run(
        self,
        *args: str,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float
    first_request_after: float | None


def report(config: pytest.Config, message: str) -> None:
    """Show a measurement on the terminal even when output is captured (no -s)."""
    line = f"[container] {message}"
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def _fail_output(what: str, proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{what} failed with exit code {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    )


@pytest.fixture(scope="module")
def engine() -> Engine:
    exe = shutil.which(ENGINE)
    if exe is None:
        hint = "run scripts/container-setup.sh" if ENGINE == "podman" else "install it"
        pytest.fail(f"container engine {ENGINE!r} not found on PATH: {hint}")
    env = dict(os.environ)
    if ENGINE == "podman":
        conf = Path(env.setdefault("CONTAINERS_CONF", str(CACHE_DIR / "containers.conf")))
        storage = Path(env.setdefault("CONTAINERS_STORAGE_CONF", str(CACHE_DIR / "storage.conf")))
        for f in (conf, storage):
            if not f.is_file():
                pytest.fail(f"{f} missing: run scripts/container-setup.sh first")
    return Engine(exe, env)


@pytest.fixture(scope="module")
def image(engine: Engine, pytestconfig: pytest.Config) -> Iterator[str]:
    """Build the real Dockerfile once per module; untag the image afterwards.

    The tag is unique per session so concurrent test runs sharing one podman
    storage never run each other's image. Untagging (not removing) keeps the
    layers as build cache for the next run.
    """
    tag = f"localhost/codesphere-release:test-{uuid.uuid4().hex[:12]}"
    base = os.environ.get("CS_BASE_IMAGE", STANDIN_BASE if ENGINE == "podman" else "")
    args = ["build", "--tag", tag, "--file", str(REPO / "Dockerfile")]
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    if ENGINE == "podman":
        # No registry here: the base must already be local (the setup script).
        args.append("--pull=never")
        if base and engine.run("image", "exists", base).returncode != 0:
            pytest.fail(f"base image {base} not in podman storage: run scripts/container-setup.sh")
        ca = os.environ.get("CS_BUILD_CA_BUNDLE", HOST_CA_BUNDLE)
        if ca and Path(ca).is_file():
            args += ["--volume", f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro"]
    args.append(str(REPO))

    started = time.monotonic()
    proc = engine.run(*args, timeout=600)
    build_seconds = time.monotonic() - started
    if proc.returncode != 0:
        pytest.fail(_fail_output(f"{ENGINE} build of {REPO / 'Dockerfile'}", proc))
    report(pytestconfig, f"{ENGINE} build: {build_seconds:.1f} s (base {base or 'default'})")
    yield tag
    if ENGINE == "podman":
        # Name the tag twice: `podman untag IMAGE` alone drops every name of the
        # image, including another session's tag on an identical build.
        engine.run("untag", tag, tag)
    else:
        engine.run("rmi", tag)


def python_in_image(engine: Engine, image: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` with the image's venv interpreter, offline."""
    return engine.run(
        "run", "--rm", "--network=none", "--entrypoint", VENV_PYTHON, image, "-c", code
    )


def run_action(
    engine: Engine,
    image: str,
    tmp_path: Path,
    inputs: Mapping[str, str],
    emulator: Emulator | None = None,
) -> RunResult:
    """Run the image as the runner does and collect exit code, outputs, summary."""
    workspace = tmp_path / "workspace"
    file_commands = tmp_path / "file_commands"
    home = tmp_path / "home"
    for d in (workspace, file_commands, home):
        d.mkdir()
    # The runner creates the command files before the step starts.
    (file_commands / "output").touch()
    (file_commands / "summary").touch()

    env = {**GITHUB_ENV, **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}}
    args = [
        "run",
        "--rm",
        "--network=host",
        "--workdir",
        "/github/workspace",
        "--volume",
        f"{workspace}:/github/workspace",
        "--volume",
        f"{file_commands}:/github/file_commands",
        "--volume",
        f"{home}:/github/home",
    ]
    # Like the runner: names on the command line, values from the environment,
    # so the token never shows up in a process list.
    for name in env:
        args += ["--env", name]
    args.append(image)

    started = time.monotonic()
    proc = engine.run(*args, timeout=300, env=env)
    seconds = time.monotonic() - started
    # The emulator stamps requests with time.monotonic() too.
    recorded = emulator.requests if emulator is not None else []
    return RunResult(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        outputs=parse_outputs((file_commands / "output").read_text()),
        summary=(file_commands / "summary").read_text(),
        seconds=seconds,
        first_request_after=recorded[0].time - started if recorded else None,
    )


def test_simple_release_in_container(
    engine: Engine, image: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    with Emulator(token=TOKEN) as emu:
        ws_id = emu.add_workspace(team_id=1, name="demo-app")
        result = run_action(
            engine,
            image,
            tmp_path,
            {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(ws_id)},
            emulator=emu,
        )
        n_requests = len(emu.requests)
        # Requests off the spec, and bad answers or errors inside the emulator itself.
        problems = emu.spec_violations + emu.response_violations + emu.internal_errors
        problems += emu.unemulated
        head = emu.branch_head("main")

    first = result.first_request_after
    report(
        pytestconfig,
        f"run: {result.seconds:.2f} s, {n_requests} API requests, "
        f"first request after {f'{first:.2f} s' if first is not None else '-'}",
    )
    details = f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    assert result.returncode == 0, f"action exited {result.returncode}\n{details}"
    assert result.outputs.get("status") == "success", f"{result.outputs}\n{details}"
    assert result.outputs.get("workspace-id") == str(ws_id), result.outputs
    assert result.outputs.get("workspace-url"), result.outputs
    assert result.outputs.get("deployed-commit") == head, result.outputs
    assert result.summary.strip(), "the action wrote no job summary"
    # ::add-mask:: is how an action asks the runner to hide a value; anywhere else leaks it.
    logged = "\n".join(
        line
        for line in (result.stdout + result.stderr).splitlines()
        if not line.startswith("::add-mask::")
    )
    assert TOKEN not in logged + result.summary, "the API token appears in the log or summary"
    assert n_requests > 0, "the action never called the emulator"
    assert problems == [], "emulator saw problems:\n" + "\n".join(problems)


def test_failure_exit_code_and_outputs_pass_through(
    engine: Engine, image: str, tmp_path: Path
) -> None:
    """A rejected token must fail the step (non-zero exit) and still report a status."""
    with Emulator(token=TOKEN) as emu:
        ws_id = emu.add_workspace(team_id=1, name="demo-app")
        result = run_action(
            engine,
            image,
            tmp_path,
            {"api-token": "wrong-token", "api-url": emu.url, "workspace-id": str(ws_id)},
            emulator=emu,
        )
        violations = emu.spec_violations
    details = f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    assert result.returncode != 0, f"a rejected token must fail the step\n{details}"
    assert result.outputs.get("status") not in (None, "", "success"), result.outputs
    assert "::error" in result.stdout, f"no ::error annotation\n{details}"
    assert violations == [], f"requests that break the OpenAPI spec: {violations}"


def test_image_is_lean_and_follows_github_rules(
    engine: Engine, image: str, pytestconfig: pytest.Config
) -> None:
    proc = engine.run("image", "inspect", image)
    assert proc.returncode == 0, _fail_output("image inspect", proc)
    info = json.loads(proc.stdout)[0]
    config = info["Config"]
    size_mb = info["Size"] / 1e6
    report(pytestconfig, f"image size: {size_mb:.1f} MB (installed, base included)")

    # GitHub's Dockerfile rules for actions: run as root, no WORKDIR, exec-form ENTRYPOINT.
    assert config.get("User", "") in ("", "root", "0"), config.get("User")
    assert config.get("WorkingDir", "") in ("", "/"), config.get("WorkingDir")
    assert config["Entrypoint"] == [VENV_PYTHON, "/action/entrypoint.py"], config["Entrypoint"]
    env = dict(e.split("=", 1) for e in config.get("Env", []))
    assert env.get("PYTHONUNBUFFERED") == "1", env

    probe = r"""
import importlib.util, json, os, pathlib, shutil, sys
action = pathlib.Path("/action")
print(json.dumps({
    "pip_cache": [p for p in ("/root/.cache/pip", "/root/.cache") if os.path.exists(p)],
    "venv_pip": importlib.util.find_spec("pip") is not None,
    "tools": [t for t in ("gcc", "cc", "make", "g++", "ld") if shutil.which(t)],
    "action_files": sorted(
        str(p.relative_to(action)) for p in action.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ),
    "package_pyc": sorted(
        p.name.split(".")[0] for p in action.rglob("__pycache__/*.pyc")
    ),
    "package_py": sorted(p.stem for p in action.rglob("*.py")),
    "tmp": sorted(os.listdir("/tmp")),
}))
"""
    proc = python_in_image(engine, image, probe)
    assert proc.returncode == 0, _fail_output("image probe", proc)
    facts = json.loads(proc.stdout)
    assert facts["pip_cache"] == [], f"caches left in the image: {facts['pip_cache']}"
    assert not facts["venv_pip"], "pip is still installed in /opt/venv"
    assert facts["tools"] == [], f"build tools in the image: {facts['tools']}"
    assert facts["tmp"] == [], f"leftovers in /tmp: {facts['tmp']}"
    files = facts["action_files"]
    assert "entrypoint.py" in files, files
    stray = [f for f in files if f != "entrypoint.py" and not f.startswith("codesphere_action/")]
    assert stray == [], f"files other than entrypoint.py and codesphere_action/: {stray}"
    missing_pyc = set(facts["package_py"]) - set(facts["package_pyc"])
    assert not missing_pyc, f"modules without compiled bytecode: {sorted(missing_pyc)}"


def test_interpreter_start_up_in_image(
    engine: Engine, image: str, pytestconfig: pytest.Config
) -> None:
    """Import the whole action inside the image and report how long start-up takes."""
    probe = (
        "import sys, time; t = time.perf_counter(); sys.path.insert(0, '/action'); "
        "import codesphere_action.main; print(f'{time.perf_counter() - t:.3f}')"
    )
    proc = python_in_image(engine, image, probe)
    assert proc.returncode == 0, _fail_output("import probe", proc)
    import_seconds = float(proc.stdout.strip())
    started = time.monotonic()
    proc = python_in_image(engine, image, "pass")
    container_seconds = time.monotonic() - started
    assert proc.returncode == 0, _fail_output("empty run", proc)
    report(
        pytestconfig,
        f"importing the action: {import_seconds * 1000:.0f} ms; "
        f"empty container run: {container_seconds:.2f} s",
    )
    assert import_seconds < 0.3, f"importing the action takes {import_seconds:.3f} s"
