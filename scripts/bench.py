"""Benchmark: whole releases against the emulator, this action beside a fixed
5 s poller (the official CLI's waiting), in one run.

    .venv/bin/python scripts/bench.py            # both scenarios, a table per scenario
    .venv/bin/python scripts/bench.py --runs 3   # repeat, report the worst run

Per run it reports wall time (process start to exit), the ideal time (the sum
of the server-side durations: workspace start, and for each stage its start
latency plus its duration), the overhead (wall - ideal), start-up (process
start to the first request reaching the API), peak memory (max RSS), and per
wait: status polls and detection lag (the poll that saw the end minus the
moment the emulator ended it). A figure, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import Emulator  # noqa: E402

TOKEN = "bench-token"
TEAM = 1
DOMAIN = "bench.example.com"
COMMANDS = {
    "action": [sys.executable, str(ROOT / "entrypoint.py")],
    "fixed 5 s": [sys.executable, str(ROOT / "scripts" / "bench_reference.py")],
}


@dataclass
class Scenario:
    name: str
    flow: str
    workspace_start: float
    stages: dict[str, float]
    latency: float
    test: bool
    goals: str

    def ideal(self) -> float:
        waits = sum(self.latency + seconds for seconds in self.stages.values())
        return waits + (self.workspace_start if self.flow == "zero-downtime" else 0.0)


SCENARIOS = [
    Scenario(
        "zero-downtime: workspace 2 s, prepare 3 s, test 1.5 s, run 1 s, latency 0.3 s",
        "zero-downtime",
        2.0,
        {"prepare": 3.0, "test": 1.5, "run": 1.0},
        0.3,
        True,
        "goal: overhead <= 2.0 s",
    ),
    Scenario(
        "simple: one 20 s prepare (run 1 s, latency 0.3 s)",
        "simple",
        0.0,
        {"prepare": 20.0, "run": 1.0},
        0.3,
        False,
        "goal: prepare <= 12 status polls, detection lag <= 3 s",
    ),
]


@dataclass
class Wait:
    name: str
    polls: int
    lag: float


@dataclass
class Measure:
    wall: float
    startup: float
    max_rss_mb: float
    exit_code: int
    waits: list[Wait] = field(default_factory=list)
    requests: int = 0


def run_once(scenario: Scenario, command: list[str]) -> Measure:
    with Emulator(
        token=TOKEN,
        workspace_start_seconds=scenario.workspace_start,
        stage_seconds={s: scenario.stages.get(s, 0.2) for s in ("prepare", "test", "run")},
        start_latency=scenario.latency,
    ) as emu:
        live = emu.add_workspace(team_id=TEAM, name="bench-live")
        emu.add_domain(TEAM, DOMAIN, {"/": [live]})
        inputs: dict[str, str] = {
            "api-token": TOKEN,
            "api-url": emu.url,
            "flow": scenario.flow,
            "test": str(scenario.test).lower(),
        }
        if scenario.flow == "simple":
            inputs["workspace-id"] = str(live)
        else:
            inputs.update({"team-id": str(TEAM), "plan-id": "8", "domain": DOMAIN})
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GITHUB_OUTPUT": str(Path(tmp, "output")),
                "GITHUB_REPOSITORY": "acme/bench",
                "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
                "GITHUB_REF_NAME": "main",
                **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
            }
            start = time.monotonic()
            proc = subprocess.Popen(
                command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            proc.stderr and proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(f"{command[-1]} failed ({proc.returncode}): {stderr}")
        requests = emu.requests
        measure = Measure(
            wall=wall,
            startup=requests[0].time - start,
            max_rss_mb=usage.ru_maxrss / 1024,
            exit_code=proc.returncode,
            requests=len(requests),
        )
        target = live
        if scenario.flow == "zero-downtime":
            (new,) = [w for w in emu.workspaces(TEAM) if w.created_via == "api"]
            target = new.id
            assert new.running_since is not None
            measure.waits.append(
                _wait(
                    "workspace start",
                    requests,
                    rf"/workspaces/{target}/status",
                    0.0,
                    new.running_since,
                )
            )
        for stage in scenario.stages:
            run = emu.stage_run(target, stage)
            assert run is not None
            end = run.up_at if stage == "run" else run.ended_at
            assert end is not None
            measure.waits.append(
                _wait(
                    stage,
                    requests,
                    rf"/workspaces/{target}/pipeline/{stage}",
                    run.requested_at,
                    end,
                )
            )
        emu.assert_clean()
        return measure


def _wait(name: str, requests: list[Any], path: str, after: float, end: float) -> Wait:
    polls = [r for r in requests if r.method == "GET" and r.path == path.replace("\\", "")]
    polls = [r for r in polls if r.time > after]
    seen = next(r for r in polls if r.time >= end)
    return Wait(name, sum(1 for r in polls if r.time <= seen.time), seen.time - end)


def table(scenario: Scenario, results: dict[str, Measure]) -> str:
    names = list(results)
    lines = [
        f"### {scenario.name}",
        f"({scenario.goals}; ideal {scenario.ideal():.2f} s)",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("wall time", [f"{m.wall:.2f} s" for m in results.values()])
    row("overhead (wall - ideal)", [f"{m.wall - scenario.ideal():.2f} s" for m in results.values()])
    row("start-up (to first request)", [f"{m.startup:.3f} s" for m in results.values()])
    row("peak memory (max RSS)", [f"{m.max_rss_mb:.0f} MB" for m in results.values()])
    row("API requests", [str(m.requests) for m in results.values()])
    first = next(iter(results.values()))
    for index, wait in enumerate(first.waits):
        row(
            f"{wait.name}: polls / lag",
            [f"{m.waits[index].polls} / {m.waits[index].lag:.2f} s" for m in results.values()],
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per cell; the worst is shown")
    parser.add_argument("--only", choices=["zero-downtime", "simple"], help="one scenario")
    args = parser.parse_args()
    for scenario in SCENARIOS:
        if args.only and scenario.flow != args.only:
            continue
        results: dict[str, Measure] = {}
        for label, command in COMMANDS.items():
            runs = [run_once(scenario, command) for _ in range(args.runs)]
            results[label] = max(runs, key=lambda m: m.wall)
        print(table(scenario, results) + "\n", flush=True)


if __name__ == "__main__":
    main()
