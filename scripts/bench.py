"""Benchmark: whole releases against the emulator, one row per variant of what
Codesphere's documents leave open, this action beside a fixed 5 s poller (the
official CLI's waiting), in one run.

    .venv/bin/python scripts/bench.py              # every table
    .venv/bin/python scripts/bench.py --only zero-downtime|prepare-20s|cancel|health|bake

Tables:
- zero-downtime reference release (workspace 2 s, prepare 3 s, test 1.5 s, run
  1 s, start latency 0.3 s; ideal 8.4 s): wall time, overhead (wall - ideal),
  start-up, peak memory, requests; goal: overhead <= 1.0 s where log streams
  end with their step, <= 2.0 s in every other variant;
- simple release with a 20 s prepare: status polls and detection lag of the
  prepare wait; goal: <= 12 polls, <= 3 s lag in every variant;
- SIGINT and SIGTERM during a 60 s prepare (a log stream open): seconds to
  exit; goal <= 2 s; each run must end `cancelled`, with the new workspace
  deleted and the domain as it was;
- health check: what it adds beyond the app's own readiness (the first
  accepted answer minus the moment the app became ready), also with
  Codesphere's placeholder page answering first (issue 20: 200, 429 or 503,
  HTML or text, for 2 s after the run is up, the app's own answer after it);
  goal <= 0.3 s;
- the bake (issue 22), across the load balancer's variants: what a canary's
  or a zero-downtime release's bake adds beyond bake-time (the run with the
  bake minus the same run without it, minus bake-time; and from the join to
  the completion), goal <= 1 s; and an app that goes bad during a bake, at
  several moments of the 5 s check interval: from then to the first failed
  check (goal: within one interval, 5 s) and to the path's previous list
  restored.
Figures, not tests: no time is asserted, but a release or cancel that did not
do its job stops the bench rather than give a figure.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import Emulator, Variants  # noqa: E402
from emulator.runner import parse_outputs, start_app  # noqa: E402

TOKEN = "bench-token"
TEAM = 1
DOMAIN = "bench.example.com"
SHA = "0123456789abcdef0123456789abcdef01234567"
ACTION = [sys.executable, str(ROOT / "entrypoint.py")]
FIXED = [sys.executable, str(ROOT / "scripts" / "bench_reference.py")]
REFERENCE = {"prepare": 3.0, "test": 1.5, "run": 1.0}
WORKSPACE_START, LATENCY = 2.0, 0.3

# One row per variant: where the log stream ends, then what the status shows.
VARIANTS: dict[str, dict[str, Any]] = {
    "streams end with their step": {},
    "stream ends after its last line": {"log_end": "after_last_line"},
    "stream cut by a proxy (0.5 s)": {"log_end": "cut", "log_cut_seconds": 0.5},
    "stream stays open, silent": {"log_end": "open_silent"},
    "stream stays open, keep-alives": {"log_end": "open_keepalive"},
    "no timestamps, stale status": {"timestamps": False},
    "no timestamps, status reset at start": {"timestamps": False, "on_start": "reset"},
    "pod replicas, customers first": {"replica_ids": "pod", "entry_order": "customers_first"},
}


# The health table's rows with Codesphere's placeholder page on: (status, type,
# seconds from its end to the app's readiness).
PLACEHOLDER_ROWS = [(200, "html", 0.0), (429, "text", 0.0), (503, "html", 0.0), (200, "html", 1.5)]
STARTING = "Workspace server is starting"


@dataclass
class Run:
    wall: float
    startup: float
    rss_mb: float
    requests: int
    code: int
    stdout: str


def environ(
    inputs: dict[str, str], tmp: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "GITHUB_OUTPUT": str(Path(tmp, "output")),
        "GITHUB_REPOSITORY": "acme/bench",
        "GITHUB_SHA": SHA,
        "GITHUB_REF_NAME": "main",
        "GITHUB_RUN_ID": "1",
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
        **(extra or {}),
    }


def run_action(
    emu: Emulator, inputs: dict[str, str], command: list[str], extra: dict[str, str] | None = None
) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=tmp,
            env=environ(inputs, tmp, extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out = proc.stdout.read().decode() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    requests = emu.requests
    return Run(
        wall=wall,
        startup=(requests[0].time - start) if requests else 0.0,
        rss_mb=usage.ru_maxrss / 1024,
        requests=len(requests),
        code=os.waitstatus_to_exitcode(status),
        stdout=out,
    )


def emulator(variants: dict[str, Any], stages: dict[str, float], **more: Any) -> Emulator:
    return Emulator(
        token=TOKEN,
        workspace_start_seconds=WORKSPACE_START,
        stage_seconds=stages,
        start_latency=LATENCY,
        variants=Variants(**variants),
        **more,
    )


def zd_inputs(**more: str) -> dict[str, str]:
    return {
        "api-token": TOKEN,
        "flow": "zero-downtime",
        "team-id": str(TEAM),
        "plan-id": "8",
        "domain": DOMAIN,
        "test": "true",
        **more,
    }


# -- the tables ------------------------------------------------------------------------
def zero_downtime(variants: dict[str, Any], command: list[str]) -> Run:
    with emulator(variants, REFERENCE) as emu:
        live = emu.add_workspace(team_id=TEAM, name="bench-live")
        emu.add_domain(TEAM, DOMAIN, {"/": [live]})
        run = run_action(emu, {**zd_inputs(), "api-url": emu.url}, command)
        if run.code != 0:
            raise SystemExit(f"{command[-1]} failed:\n{run.stdout}")
        emu.assert_clean()
        return run


def prepare_20s(variants: dict[str, Any], command: list[str]) -> tuple[int, float]:
    """(status polls, detection lag) of a 20 s prepare in the simple flow."""
    with emulator(variants, {"prepare": 20.0, "run": 1.0}) as emu:
        ws = emu.add_workspace(team_id=TEAM, name="bench-live")
        inputs = {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(ws)}
        run = run_action(emu, inputs, command)
        if run.code != 0:
            raise SystemExit(f"{command[-1]} failed:\n{run.stdout}")
        prepare = emu.stage_run(ws, "prepare")
        assert prepare is not None and prepare.ended_at is not None
        polls = [
            r.time
            for r in emu.find_requests("GET", rf"/workspaces/{ws}/pipeline/prepare")
            if r.time > prepare.requested_at
        ]
        seen = next(t for t in polls if t >= prepare.ended_at)
        return sum(1 for t in polls if t <= seen), seen - prepare.ended_at


def cancel(variants: dict[str, Any], sig: signal.Signals) -> float:
    """Seconds from the signal to the exit, during a 60 s prepare with its log open."""
    with emulator(variants, {"prepare": 60.0}) as emu, tempfile.TemporaryDirectory() as tmp:
        live = emu.add_workspace(team_id=TEAM, name="bench-live")
        emu.add_domain(TEAM, DOMAIN, {"/": [live]})
        proc = subprocess.Popen(
            ACTION,
            cwd=tmp,
            env=environ({**zd_inputs(), "api-url": emu.url}, tmp),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not emu.find_requests("GET", r"/workspaces/\d+/logs/prepare/\d+"):
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the prepare's log stream was never opened")
            time.sleep(0.02)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=15)
        seconds = time.monotonic() - sent
        # A figure only counts for a cancel that did what it promises.
        outputs = parse_outputs(Path(tmp, "output").read_text())
        created = [w for w in emu.workspaces(TEAM) if w.id != live]
        if outputs.get("status") != "cancelled" or created:
            raise SystemExit(f"{sig.name}: status {outputs.get('status')!r}, left {created}")
        if emu.domain(TEAM, DOMAIN).workspaces != {"/": [live]}:
            raise SystemExit(f"{sig.name}: the domain moved: {emu.domain(TEAM, DOMAIN).workspaces}")
        return seconds


def health(ready_after: float, **placeholder: Any) -> float:
    """The first accepted health-check answer minus the moment the app was ready
    (its own answer, after ``placeholder_seconds`` of Codesphere's placeholder)."""
    with emulator({}, REFERENCE) as emu:
        emu.serve_apps(ready_after=ready_after, **placeholder)
        live = emu.add_workspace(team_id=TEAM, name="bench-live")
        emu.add_domain(TEAM, DOMAIN, {"/": [live]})
        inputs = {
            **zd_inputs(**{"health-check-path": "/healthz", "health-check-domain": "false"}),
            "api-url": emu.url,
        }
        run = run_action(emu, inputs, ACTION)
        if run.code != 0:
            raise SystemExit(f"the health-check release failed:\n{run.stdout}")
        (new,) = [w.id for w in emu.workspaces(TEAM) if w.created_via == "api"]
        stage = emu.stage_run(new, "run")
        assert stage is not None and stage.up_at is not None
        accepted = next(
            r.time
            for r in emu.app_requests
            if r.listener == f"app:{new}" and r.status == 200 and not r.placeholder
        )
        ready = stage.up_at + float(placeholder.get("placeholder_seconds", 0.0)) + ready_after
        if any(r.placeholder for r in emu.app_requests if r.time >= accepted):
            raise SystemExit("the health check passed on the placeholder page")
        return accepted - ready


# -- the bake ---------------------------------------------------------------------------
BAKE_STAGES = {"prepare": 0.3, "run": 0.3}
CONNECTIONS = rf"/domains/team/{TEAM}/domain/{DOMAIN}/workspace-connections$"
DOMAIN_READ = rf"/domains/team/{TEAM}/domain/{DOMAIN}$"


def bake_setup(emu: Emulator) -> tuple[int, dict[str, str], dict[str, str]]:
    """The live app on the domain, up; (its id, the inputs, the test seam)."""
    emu.serve_apps()
    live = emu.add_workspace(team_id=TEAM, name="bench-live")
    emu.configure_stage(live, "run", seconds=0.1)
    start_app(emu, live, token=TOKEN)
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    inputs = {**zd_inputs(**{"health-check-path": "/healthz"}), "api-url": emu.url, "test": "false"}
    return live, inputs, {"CODESPHERE_RELEASE_RESOLVE": f"{DOMAIN}={emu.domain_proxy}"}


def bake_overhead(flow: str, bake: float, balancer: str) -> tuple[float, float]:
    """(wall with bake-time minus wall without minus bake-time, the first
    switch to the last one minus bake-time (canary: join to completion))."""
    walls, spans = [], []
    for seconds in (0.0, bake):
        with emulator({"balancer": balancer}, BAKE_STAGES) as emu:
            _live, inputs, seam = bake_setup(emu)
            inputs.update({"flow": flow, "bake-time": f"{seconds:g}s"})
            run = run_action(emu, inputs, ACTION, seam)
            if run.code != 0:
                raise SystemExit(
                    f"the {flow} run with bake-time {seconds:g}s failed:\n{run.stdout}"
                )
            emu.assert_clean()
            walls.append(run.wall)
            puts = emu.find_requests("PUT", CONNECTIONS)
            spans.append(puts[-1].time - puts[0].time)
    return walls[1] - walls[0] - bake, spans[1] - bake if flow == "canary" else float("nan")


def bake_failure(offset: float, where: str, balancer: str) -> tuple[float, float]:
    """An app that goes bad ``offset`` s after the bake's first round, on its
    dev domain or only through the domain: (seconds to the first failed check,
    to the previous list restored)."""
    with emulator({"balancer": balancer}, BAKE_STAGES) as emu, tempfile.TemporaryDirectory() as tmp:
        live, inputs, seam = bake_setup(emu)
        inputs.update({"flow": "canary", "bake-time": "60s"})
        proc = subprocess.Popen(
            ACTION,
            cwd=tmp,
            env=environ(inputs, tmp, seam),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60

        def first_read() -> float | None:
            puts = emu.find_requests("PUT", CONNECTIONS)
            reads = [
                r for r in emu.find_requests("GET", DOMAIN_READ) if puts and r.time > puts[0].time
            ]
            return reads[0].time if reads else None

        while (started := first_read()) is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the canary's bake never started")
            time.sleep(0.01)
        time.sleep(max(0.0, started + offset - time.monotonic()))
        (new,) = [w.id for w in emu.workspaces(TEAM) if w.id != live]
        bad = time.monotonic()
        emu.configure_app(
            new, **({"dev_statuses": [503]} if where == "dev" else {"domain_statuses": [502]})
        )
        proc.wait(timeout=60)
        failed = [
            r.time
            for r in emu.app_requests
            if r.time >= bad
            and r.status >= 500
            and (r.listener == f"app:{new}" if where == "dev" else r.workspace_id == new)
        ]
        restore = emu.find_requests("PUT", CONNECTIONS)[-1]
        outputs = parse_outputs(Path(tmp, "output").read_text())
        if outputs.get("status") != "failed" or emu.domain(TEAM, DOMAIN).workspaces != {
            "/": [live]
        }:
            raise SystemExit(f"the failing bake was not undone: {outputs}")
        if not emu.workspace(new).deleted:
            raise SystemExit("the failing canary was not deleted")
        return failed[0] - bad, restore.time - bad


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=["zero-downtime", "prepare-20s", "cancel", "health", "bake"]
    )
    args = parser.parse_args()
    wanted: Callable[[str], bool] = lambda name: args.only in (None, name)  # noqa: E731
    ideal = WORKSPACE_START + sum(LATENCY + s for s in REFERENCE.values())

    if wanted("zero-downtime"):
        rows = []
        for name, variants in VARIANTS.items():
            mine, fixed = zero_downtime(variants, ACTION), zero_downtime(variants, FIXED)
            rows.append(
                [
                    name,
                    f"{mine.wall:.2f} s",
                    f"**{mine.wall - ideal:.2f} s**",
                    f"{fixed.wall - ideal:.2f} s",
                    f"{mine.startup:.3f} s",
                    f"{mine.rss_mb:.0f} MB",
                    f"{mine.requests} / {fixed.requests}",
                ]
            )
            print(f"  {name}: overhead {mine.wall - ideal:.2f} s", file=sys.stderr, flush=True)
        print(
            table(
                f"Zero-downtime reference release (ideal {ideal:.1f} s; goal: overhead <= 1.0 s "
                "where streams end with their step, <= 2.0 s otherwise)",
                [
                    "variant",
                    "wall",
                    "overhead",
                    "overhead, fixed 5 s",
                    "start-up",
                    "peak RSS",
                    "requests (action / fixed)",
                ],
                rows,
            ),
            flush=True,
        )
    if wanted("prepare-20s"):
        rows = []
        for name, variants in VARIANTS.items():
            polls, lag = prepare_20s(variants, ACTION)
            fixed_polls, fixed_lag = prepare_20s(variants, FIXED)
            rows.append(
                [name, f"**{polls}**", f"**{lag:.2f} s**", f"{fixed_polls} / {fixed_lag:.2f} s"]
            )
            print(f"  {name}: {polls} polls, lag {lag:.2f} s", file=sys.stderr, flush=True)
        print(
            table(
                "A 20 s prepare (goal: <= 12 status polls, <= 3 s detection lag)",
                ["variant", "status polls", "detection lag", "fixed 5 s: polls / lag"],
                rows,
            ),
            flush=True,
        )
    if wanted("cancel"):
        rows = []
        for name, variants in VARIANTS.items():
            sigint, sigterm = cancel(variants, signal.SIGINT), cancel(variants, signal.SIGTERM)
            rows.append([name, f"**{sigint:.2f} s**", f"{sigterm:.2f} s"])
            print(f"  {name}: SIGINT {sigint:.2f} s", file=sys.stderr, flush=True)
        print(
            table(
                "Cancel during a 60 s prepare with its log stream open (goal: exit <= 2 s)",
                ["variant", "SIGINT to exit", "SIGTERM to exit"],
                rows,
            ),
            flush=True,
        )
    if wanted("health"):
        rows = [
            [f"app ready {ready:.1f} s after run is up", f"**{health(ready):.2f} s**"]
            for ready in (0.0, 0.7, 1.5, 4.0, 15.0, 40.0)
        ]
        for status, kind, ready in PLACEHOLDER_ROWS:
            seconds = health(
                ready,
                placeholder_seconds=2.0,
                placeholder_status=status,
                placeholder_type=kind,
                placeholder_phrase="Too Many Requests" if status == 429 else STARTING,
            )
            rows.append(
                [
                    f"placeholder {status} ({kind}) for 2 s, app ready {ready:.1f} s later",
                    f"**{seconds:.2f} s**",
                ]
            )
        print(
            table(
                "Health check: what it adds beyond the app's own readiness (goal: <= 0.3 s)",
                ["app", "first accepted answer - app ready"],
                rows,
            ),
            flush=True,
        )

    if wanted("bake"):
        bake_tables()


def bake_tables() -> None:
    rows = []
    for flow, seconds in (("canary", 5.0), ("canary", 12.0), ("zero-downtime", 12.0)):
        for balancer in ("sticky", "round_robin"):
            wall, span = bake_overhead(flow, seconds, balancer)
            rows.append(
                [
                    f"{flow}, bake-time {seconds:g} s, {balancer.replace('_', '-')}",
                    f"**{wall:.2f} s**",
                    "" if span != span else f"{span:.2f} s",  # NaN: no completion
                ]
            )
            print(f"  {rows[-1][0]}: {wall:.2f} s", file=sys.stderr, flush=True)
    print(
        table(
            "The bake: what it adds beyond bake-time (goal: <= 1 s)",
            ["release", "wall with - wall without - bake-time", "join to completion - bake-time"],
            rows,
        ),
        flush=True,
    )
    rows = []
    for where in ("dev", "domain"):
        for offset in (0.1, 2.5, 4.9):
            for balancer in ("sticky", "round_robin"):
                noticed, undone = bake_failure(offset, where, balancer)
                rows.append(
                    [
                        f"{'dev domain' if where == 'dev' else 'through the domain only'}, "
                        f"{offset:.1f} s into the interval, {balancer.replace('_', '-')}",
                        f"**{noticed:.2f} s**",
                        f"{undone:.2f} s",
                    ]
                )
                print(f"  {rows[-1][0]}: {noticed:.2f} s", file=sys.stderr, flush=True)
    print(
        table(
            "An app that goes bad during a canary's bake (goal: noticed within one check "
            "interval, 5 s)",
            ["app fails", "to the first failed check", "to the previous list restored"],
            rows,
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
