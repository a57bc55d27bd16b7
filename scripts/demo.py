"""See every release flow work against the local Codesphere emulator, as a runner shows it.

    python scripts/demo.py [simple|zero-downtime|failure|preview|...|all] [--debug]

Each part gets a fresh emulator (emulator/) on 127.0.0.1 with stages of
about 1 s. The action runs as the runner runs it: entrypoint.py as a
subprocess, inputs in INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
files, the event file for pull requests, an unrelated working directory
(emulator/runner.py's Runner prepares that environment). Its stdout and stderr are
rendered live as the job log shows them (scripts/runner_log.py: groups,
annotations, masks, no raw ``::`` workflow commands), then the outputs and the
job summary (Markdown) are printed. The api-token, "demo-token", is a secret
to the runner from the start: the log shows it as ***.

What is printed reads as a user's log would: the emulator's loopback
addresses are shown as the names they stand in for (the API as
https://cloud.codesphere.com/api, each app as its dev domain, the domain
proxy as the custom domain), and the inputs and the environment that point
the action at the emulator (api-url, and the test seam
CODESPHERE_RELEASE_RESOLVE that reaches the custom domain through the
emulator's domain proxy) are left out of the step's header.

    simple          git pull, prepare, test, restart the run stage in the live workspace
    zero-downtime   a new workspace, health-checked, then the domain moves to it
    failure         a release whose tests fail: the failing step's log, the new
                    workspace deleted, the domain untouched
    canary          a new workspace joins the domain beside the live one, is baked for
                    4 s (checked on its dev domain and through the domain), then completes
    preview         a workspace for a pull request
    teardown        a preview, then the pull request closes and it is deleted
    promote         a release staged with switch: false, promoted, then rolled back
    rollback        the domain points at a bad release; it goes back to the one before
    prune           what earlier runs left behind is deleted, what serves is kept
    all             all of them, in this order (about 40 s)

--debug runs the action with RUNNER_DEBUG=1 and shows its debug lines. Colours
only on a terminal, and not with NO_COLOR set. Exit code 0 when every run
ended as it should (the failure part's run fails, cleaned up) and the
emulator saw only requests the API spec allows, 1 otherwise, 2 for a bad
argument, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codesphere_action.github import count  # noqa: E402
from emulator import Emulator  # noqa: E402
from emulator.events import BRANCH, PR, pr_event  # noqa: E402
from emulator.runner import (  # noqa: E402
    ENTRYPOINT,
    SHA,
    Runner,
    mark,
    parse_outputs,
    stamp,
    start_app,
)
from scripts.runner_log import RunnerLog  # noqa: E402

TOKEN = "demo-token"  # masked like a real one: the log shows ***
TEAM, PLAN = 7, 21
DOMAIN = "shop.example.com"
ACTION = "OWNER/codesphere-release@<commit-sha>"
API_URL = "https://cloud.codesphere.com/api"  # what the emulator's address is shown as
# Inputs and environment that point the action at the emulator: a user's step has none.
HIDDEN = ("api-url", "CODESPHERE_RELEASE_RESOLVE")
STAGE_SECONDS = {"prepare": 1.0, "test": 1.0, "run": 1.0}
PR_HEAD = "9fceb02d0ae598e95dc970b74767f19372d61af8"  # the pull request's head commit
DAY = 86400

HEADINGS = {
    "simple": "simple: release the commit into the live workspace "
    "(git pull, prepare, test, restart the app)",
    "zero-downtime": "zero-downtime: build a new workspace beside the live one, "
    f"check its health, then move {DOMAIN} to it",
    "failure": "failure: a zero-downtime release whose tests fail: the failing step's log, "
    f"the new workspace deleted, {DOMAIN} untouched",
    "canary": f"canary: a new workspace joins {DOMAIN} beside the live one, is watched for "
    "a 4 s bake, then serves alone (a failing bake would undo it)",
    "preview": f"preview: a workspace of its own for pull request #{PR}, "
    f"built from its branch {BRANCH}",
    "teardown": f"teardown: pull request #{PR} is closed, its preview workspace is deleted "
    "(the preview is made first)",
    "promote": "promote: stage a release (switch: false), promote it to the domain, "
    "then roll back to the workspace before",
    "rollback": f"rollback: {DOMAIN} points at a release that misbehaves; point it back "
    "at the workspace that served it before",
    "prune": "prune: delete what earlier releases and previews left behind "
    "(never what serves a domain, never what the action did not make)",
}
PARTS_IN_ORDER = tuple(HEADINGS)  # what `all` runs
FLOWS = tuple(part for part in HEADINGS if part != "failure")  # a part per flow


LOOPBACK = re.compile(r"(https?://)?127\.0\.0\.1:\d+")


class Shown:
    """A line as a user's log would read it: the emulator's loopback addresses
    as the names they stand in for (its API as API_URL, each app as its dev
    domain, the domain proxy as the custom domain)."""

    def __init__(self, emu: Emulator | None = None) -> None:
        self.emu = emu

    def __call__(self, line: str) -> str:
        if self.emu is None or "127.0.0.1" not in line:
            return line
        line = line.replace(self.emu.url, API_URL)
        names = self.emu.app_names
        if names:  # apps are served: so is the custom domain, through the proxy
            names[self.emu.domain_proxy] = DOMAIN

        def name(match: re.Match[str]) -> str:
            address = match.group(0).removeprefix(match.group(1) or "")
            if address not in names:
                return match.group(0)
            return f"https://{names[address]}" if match.group(1) else names[address]

        return LOOPBACK.sub(name, line)


class Demo:
    """Runs the parts; renders every run; remembers how each ended."""

    def __init__(self, *, debug: bool, color: bool) -> None:
        self.debug = debug
        self.color = color
        # label, ended as it should, seconds, failed on purpose
        self.results: list[tuple[str, bool, float, bool]] = []
        self.shown = Shown()

    def say(self, text: str = "", style: str = "") -> None:
        codes = {"heading": "\033[1;34m", "dim": "\033[2m", "bad": "\033[1;31m"}
        text = self.shown(text)
        if self.color and style and text:
            text = f"{codes[style]}{text}\033[0m"
        print(text, flush=True)

    def check(self, label: str, ok: bool, why: str) -> None:
        """A claim the demo makes about what a run left behind, checked."""
        self.say(why, "dim" if ok else "bad")
        if not ok:
            self.results.append((label, False, 0.0, False))

    @property
    def last_ok(self) -> bool:
        return bool(self.results) and self.results[-1][1]

    @contextmanager
    def part(self, flow: str) -> Iterator[tuple[Emulator, Runner]]:
        """A heading, a fresh emulator, a runner-like environment in a temporary directory."""
        self.say()
        self.say(f"=== {HEADINGS[flow]} ===", "heading")
        with (
            Emulator(token=TOKEN, stage_seconds=STAGE_SECONDS, workspace_start_seconds=0.5) as emu,
            tempfile.TemporaryDirectory(prefix="codesphere-demo-") as tmp,
        ):
            self.shown = Shown(emu)
            try:
                yield emu, Runner(Path(tmp))
                try:
                    emu.assert_clean()  # every request the action sent matched the API spec
                except AssertionError as exc:
                    self.say(f"The emulator saw requests off the API spec: {exc}", "bad")
                    self.results.append((f"{flow}: API spec check", False, 0.0, False))
            finally:
                self.shown = Shown()

    def run(
        self,
        runner: Runner,
        label: str,
        inputs: dict[str, str],
        extra: dict[str, str] | None = None,
        *,
        expect: str = "success",
    ) -> dict[str, str]:
        """One step of a job: the action with these inputs. Prints the rendered
        log, the outputs and the job summary; returns the outputs. ``expect``:
        the status it should end with (anything but success: with exit code 1)."""
        self.say()
        self.say(f"--- {label} ---", "heading")
        env = runner.environ(inputs, extra)
        if self.debug:
            env["RUNNER_DEBUG"] = "1"
        log = RunnerLog(color=self.color, debug=self.debug)
        log.add_mask(TOKEN)  # the runner knows its secrets before the step starts
        self._print(self._step_header(log, inputs))
        started = time.monotonic()
        code, interrupted = self._stream(runner, env, log)
        seconds = time.monotonic() - started
        outputs = parse_outputs(runner.output_file.read_text())
        self.say()
        self.say("Outputs (GITHUB_OUTPUT):", "dim")
        self._print([f"  {log.mask(f'{name}={value}')}" for name, value in outputs.items()])
        summary = runner.summary_file.read_text().strip()
        self.say()
        self.say("Job summary (GITHUB_STEP_SUMMARY, Markdown):", "dim")
        self._print([f"  {log.mask(line)}".rstrip() for line in summary.splitlines()])
        status = outputs.get("status", "")
        as_expected = status == expect and (code == 0) == (expect == "success")
        note = "" if expect == "success" else f" ({expect}, as it should)" if as_expected else ""
        self.say()
        self.say(
            f"{label}: exit code {code}, status={status}, {seconds:.1f} s{note}",
            "dim" if as_expected else "bad",
        )
        self.results.append((label, as_expected, seconds, expect != "success"))
        if interrupted:
            raise KeyboardInterrupt
        return outputs

    def _stream(self, runner: Runner, env: dict[str, str], log: RunnerLog) -> tuple[int, bool]:
        """Run the action, rendering its log live; (exit code, interrupted)."""
        proc = subprocess.Popen(
            [sys.executable, str(ENTRYPOINT)],
            cwd=runner.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # the runner logs both
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        assert proc.stdout is not None
        interrupted = False
        try:
            for line in proc.stdout:
                self._print(log.feed(line))
        except KeyboardInterrupt:  # the action got SIGINT too: show how it cancels
            interrupted = True
            for line in proc.stdout:
                self._print(log.feed(line))
        code = proc.wait()
        self._print(log.close())
        return code, interrupted

    def _step_header(self, log: RunnerLog, inputs: dict[str, str]) -> list[str]:
        """The step's header as the runner shows it: the action and the inputs a
        user's workflow would pass (not those that point it at the emulator)."""
        lines = log.group(f"Run {ACTION}")
        lines += log.text("with:")
        shown = {name: value for name, value in inputs.items() if name not in HIDDEN}
        lines += [line for name, value in shown.items() for line in log.text(f"  {name}: {value}")]
        return lines + log.end_group()

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            print(self.shown(line), flush=True)


def inputs_for(emu: Emulator, flow: str, **more: str) -> dict[str, str]:
    common = {"api-token": TOKEN, "api-url": emu.url, "flow": flow}
    if flow != "simple":
        common["team-id"] = str(TEAM)
    return {**common, **more}


def live_app(emu: Emulator, name: str) -> int:
    """A workspace as an earlier release left it: its app up."""
    workspace = emu.add_workspace(team_id=TEAM, name=name)
    emu.configure_stage(workspace, "run", seconds=0.1)
    start_app(emu, workspace, token=TOKEN)
    return workspace


def pushed(emu: Emulator) -> None:
    """main moves on to the commit this run releases (GITHUB_SHA); the live
    workspaces stay at the commit they were made from."""
    emu.set_branch_head("main", SHA)


def resolve(emu: Emulator) -> dict[str, str]:
    """How the action reaches the custom domain here: the emulator's domain proxy."""
    return {"CODESPHERE_RELEASE_RESOLVE": f"{DOMAIN}={emu.domain_proxy}"}


def demo_simple(demo: Demo) -> None:
    with demo.part("simple") as (emu, runner):
        live = emu.add_workspace(team_id=TEAM, name="shop")
        pushed(emu)
        demo.say(f"Codesphere (the emulator): workspace {live} (shop) runs the app", "dim")
        demo.run(
            runner,
            "flow: simple",
            inputs_for(emu, "simple", **{"workspace-id": str(live)}, test="true"),
        )


def demo_zero_downtime(demo: Demo) -> None:
    with demo.part("zero-downtime") as (emu, runner):
        emu.serve_apps()  # every workspace's app answers, the domain proxy routes to them
        old = live_app(emu, "shop-old")
        emu.add_domain(TEAM, DOMAIN, {"/": [old]})
        pushed(emu)
        demo.say(f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {old}", "dim")
        demo.run(
            runner,
            "flow: zero-downtime",
            inputs_for(
                emu,
                "zero-downtime",
                **{"plan-id": str(PLAN), "domain": DOMAIN, "health-check-path": "/healthz"},
                test="true",
            ),
            resolve(emu),
        )


def demo_canary(demo: Demo) -> None:
    with demo.part("canary") as (emu, runner):
        emu.serve_apps()  # the domain proxy spreads the path over its workspaces
        old = live_app(emu, "shop-old")
        emu.add_domain(TEAM, DOMAIN, {"/": [old]})
        pushed(emu)
        demo.say(f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {old}", "dim")
        demo.run(
            runner,
            "flow: canary, bake-time: 4s",
            inputs_for(
                emu,
                "canary",
                **{
                    "plan-id": str(PLAN),
                    "domain": DOMAIN,
                    "health-check-path": "/healthz",
                    "bake-time": "4s",
                },
            ),
            resolve(emu),
        )


# What a failing test step prints; its log is shown in the job log, bounded and masked.
FAILING_TEST = [
    "FAIL src/cart.test.js",
    "  cart > applies the discount code",
    "    expect(received).toBe(expected)",
    "    Expected: 90",
    "    Received: 100",
    "Tests: 1 failed, 41 passed, 42 total",
]


def demo_failure(demo: Demo) -> None:
    with demo.part("failure") as (emu, runner):
        emu.serve_apps()
        old = live_app(emu, "shop-old")
        emu.add_domain(TEAM, DOMAIN, {"/": [old]})
        pushed(emu)
        # The new commit's tests fail: step 2 of 2 of the test stage, in every new workspace.
        test = {"fail_step": 1, "error_lines": FAILING_TEST}
        emu.defaults_for_new_workspaces(stages={"test": test})
        demo.say(
            f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {old}; "
            "the commit to release fails one of its tests",
            "dim",
        )
        outputs = demo.run(
            runner,
            "flow: zero-downtime, test: true (a test fails)",
            inputs_for(
                emu,
                "zero-downtime",
                **{"plan-id": str(PLAN), "domain": DOMAIN, "health-check-path": "/healthz"},
                test="true",
            ),
            resolve(emu),
            expect="failed",
        )
        new = [w for w in emu.workspaces(TEAM, include_deleted=True) if w.id != old]
        serving = emu.domain(TEAM, DOMAIN).workspaces
        gone = bool(new) and all(w.deleted for w in new)
        demo.check(
            "failure: the new workspace deleted",
            gone and outputs.get("workspace-id") == str(new[0].id),
            f"Afterwards: workspace {', '.join(str(w.id) for w in new) or '(none)'} "
            f"{'is deleted' if gone else 'is still there'}",
        )
        demo.check(
            f"failure: {DOMAIN} untouched",
            serving == {"/": [old]},
            f"Afterwards: {DOMAIN}/ is served by workspace "
            f"{', '.join(str(i) for i in serving.get('/', [])) or 'nothing'}",
        )


def _preview(demo: Demo, emu: Emulator, runner: Runner) -> None:
    emu.set_branch_head(BRANCH, PR_HEAD)
    demo.run(
        runner,
        f"flow: preview, on pull_request (opened) #{PR}",
        inputs_for(emu, "preview", **{"plan-id": str(PLAN)}, test="true"),
        pr_event(runner, sha=PR_HEAD),
    )


def demo_preview(demo: Demo) -> None:
    with demo.part("preview") as (emu, runner):
        demo.say(f"Codesphere (the emulator): team {TEAM}, no workspace yet", "dim")
        _preview(demo, emu, runner)


def demo_teardown(demo: Demo) -> None:
    with demo.part("teardown") as (emu, runner):
        demo.say(f"Codesphere (the emulator): team {TEAM}, no workspace yet", "dim")
        _preview(demo, emu, runner)
        if not demo.last_ok:
            return
        demo.run(
            runner,
            f"flow: teardown, on pull_request (closed) #{PR}",
            inputs_for(emu, "teardown"),
            pr_event(runner, action="closed", sha=PR_HEAD),
        )


def demo_promote(demo: Demo) -> None:
    with demo.part("promote") as (emu, runner):
        emu.serve_apps()
        old = live_app(emu, "shop-old")
        emu.add_domain(TEAM, DOMAIN, {"/": [old]})
        pushed(emu)
        demo.say(f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {old}", "dim")
        health = {"domain": DOMAIN, "health-check-path": "/healthz"}
        staged = demo.run(
            runner,
            "1 of 3: flow: zero-downtime with switch: false (build and check, keep the domain)",
            inputs_for(emu, "zero-downtime", **{"plan-id": str(PLAN)}, switch="false", **health),
            resolve(emu),
        )
        if not demo.last_ok:
            return
        new = staged["workspace-id"]
        promoted = demo.run(
            runner,
            f"2 of 3: flow: promote, workspace-id: {new} (the staged release takes the domain)",
            inputs_for(emu, "promote", **{"workspace-id": new}, **health),
            resolve(emu),
        )
        if not demo.last_ok:
            return
        previous = promoted["previous-workspace-id"]
        demo.run(
            runner,
            f"3 of 3: flow: rollback, workspace-id: {previous} (the domain goes back)",
            inputs_for(emu, "rollback", **{"workspace-id": previous, "domain": DOMAIN}),
        )


def demo_prune(demo: Demo) -> None:
    with demo.part("prune") as (emu, runner):
        live = emu.add_workspace(
            team_id=TEAM, name="shop-live", env=mark(run="30.1", domain=DOMAIN, started=stamp(DAY))
        )
        for run, name, days in (("29.1", "shop-before", 2), ("28.1", "shop-long-ago", 9)):
            env = mark(run=run, domain=DOMAIN, started=stamp(days * DAY))
            emu.add_workspace(team_id=TEAM, name=name, env=env)
        emu.add_workspace(
            team_id=TEAM,
            name="shop-failed",
            env=mark(run="27.1", state="building", started=stamp(12 * DAY)),
        )
        emu.add_workspace(
            team_id=TEAM, name="shop-pr-3", env=mark(flow="preview", pr=3, started=stamp(20 * DAY))
        )
        emu.add_workspace(team_id=TEAM, name="made-by-hand")
        emu.add_domain(TEAM, DOMAIN, {"/": [live]})
        demo.say(
            f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {live}; two earlier "
            "releases, a failed one, a stale preview and one made by hand are there too",
            "dim",
        )
        demo.run(runner, "flow: prune (keep: 1, max-age: 7d)", inputs_for(emu, "prune"))


def demo_rollback(demo: Demo) -> None:
    with demo.part("rollback") as (emu, runner):
        emu.serve_apps()
        before = live_app(emu, "shop-before")
        bad = live_app(emu, "shop-bad")
        emu.add_domain(TEAM, DOMAIN, {"/": [bad]})
        demo.say(
            f"Codesphere (the emulator): {DOMAIN}/ is served by workspace {bad}, the release "
            f"that misbehaves; workspace {before} served it before (the release's "
            "previous-workspace-id output)",
            "dim",
        )
        demo.run(
            runner,
            f"flow: rollback, workspace-id: {before}",
            inputs_for(
                emu,
                "rollback",
                **{"workspace-id": str(before), "domain": DOMAIN, "health-check-path": "/healthz"},
            ),
            resolve(emu),
        )


PARTS: dict[str, Callable[[Demo], None]] = {
    "simple": demo_simple,
    "zero-downtime": demo_zero_downtime,
    "failure": demo_failure,
    "canary": demo_canary,
    "preview": demo_preview,
    "teardown": demo_teardown,
    "promote": demo_promote,
    "rollback": demo_rollback,
    "prune": demo_prune,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Release flows against a local Codesphere emulator, as a runner shows them.",
    )
    parser.add_argument("flow", nargs="?", choices=[*PARTS_IN_ORDER, "all"], help="default: simple")
    parser.add_argument("--debug", action="store_true", help="show the action's debug log")
    args = parser.parse_args(argv)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    demo = Demo(debug=args.debug, color=color)
    started = time.monotonic()
    try:
        for part in PARTS_IN_ORDER if args.flow == "all" else [args.flow or "simple"]:
            PARTS[part](demo)
    except KeyboardInterrupt:
        demo.say("\nInterrupted.", "bad")
        return 130
    demo.say()
    failed = [label for label, ok, _, _ in demo.results if not ok]
    if failed:
        demo.say(f"{len(failed)} of {len(demo.results)} runs failed: {'; '.join(failed)}", "bad")
    else:
        demo.say(f"{_tally(demo.results)} in {time.monotonic() - started:.0f} s.", "dim")
    if args.flow is None:
        others = ", ".join(part for part in PARTS_IN_ORDER if part != "simple")
        demo.say(f"More: scripts/demo {others} or all (--debug shows the debug log).")
    return 1 if failed else 0


def _tally(results: list[tuple[str, bool, float, bool]]) -> str:
    """ "10 runs succeeded and 1 run failed as it should" """
    succeeded = sum(1 for _, _, _, on_purpose in results if not on_purpose)
    on_purpose = len(results) - succeeded
    said = [f"{count(succeeded, 'run')} succeeded"] if succeeded else []
    if on_purpose:
        said.append(f"{count(on_purpose, 'run')} failed as it should")
    return " and ".join(said)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
