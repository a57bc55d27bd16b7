"""End to end: the guardrails of issue 21 that keep a release from doing harm.

1. A release never replaces a newer one. Each release records when it started
   (``started=`` in its mark, with the route it is for); the switch reads the
   domain's map and, before writing, stops when a workspace serving the path
   carries this repository's mark with a later ``started``: that run changes
   nothing, deletes its own workspace and ends ``superseded``. Two runs racing
   one domain (a create answered late) end on the newer, in both orders; the
   same rule protects promote; rollback goes back on purpose and is exempt.
2. ``dry-run: true``: every flow reads what it needs, validates what it can,
   prints the plan (the workspace it would create or pull into, the stages,
   the domain's map before and after, what it would delete and keep, and why)
   and stops: never a POST, PUT, PATCH or DELETE, to Codesphere or GitHub;
   status ``planned``, exit code 0, the plan in the job summary. The plan is
   what the real run then does.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.github import FakeGitHub
from emulator.runner import SHA, ActionRun, Runner, mark, stamp

from .test_e2e_preview import preview_inputs, teardown_inputs
from .test_e2e_rollback import live_setup as rollback_setup
from .test_e2e_rollback import rollback_inputs, start_run_stages
from .test_e2e_zero_downtime import DOMAIN, NAME, PLAN, TEAM, created, zd_inputs

GH_TOKEN = "ghs_fakeDryRunToken0123456789abcdef"

OLDER, NEWER = "a" * 40, "b" * 40  # the commits of run A and of run B, which starts later
STARTED = re.compile(r" started=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ")


def until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(runner: Runner, proc: subprocess.Popen[str]) -> ActionRun:
    stdout, stderr = proc.communicate(timeout=60)
    return runner.result(proc.returncode, stdout, stderr, 0.0)


def notices(result: ActionRun) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("::notice")]


def release_of(emu: Emulator, commit: str) -> int:
    (workspace,) = emu.workspaces(TEAM, name=f"shop-{commit[:7]}", include_deleted=True)
    return workspace.id


def live_release(emu: Emulator) -> int:
    """The release that serves ``/`` today: made by the action an hour ago."""
    old = emu.add_workspace(
        team_id=TEAM, name="shop-0ld0ld0", env=mark(domain=DOMAIN, started=stamp(3600))
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    return old


# -- 1. a release never replaces a newer one -------------------------------------------------


@pytest.mark.parametrize("order", ["newer-switches-first", "older-switches-first"])
def test_two_runs_racing_one_domain_end_on_the_newer_release(
    emu: Emulator, tmp_path: Path, order: str
) -> None:
    """Run A releases ``aaaaaaa``; run B starts after it with ``bbbbbbb``. One of the
    two creates is answered late (held until the other run is done):
    - newer-switches-first: A's create is late, so B switches first; A, switching
      last, finds B's newer release on the path: it writes nothing, deletes its own
      workspace (never B's) and ends superseded;
    - older-switches-first: B's create is late; A switches, then B replaces it
      (and deletes it: delete-previous), as any later release does.
    Either way the domain ends on B and B's workspace lives."""
    old = live_release(emu)
    late = emu.add_fault(
        "hold",
        method="POST",
        path=r"^/workspaces$",
        skip=0 if order == "newer-switches-first" else 1,
        times=1,
    )
    runners = {}
    for run in ("A", "B"):
        (tmp_path / run).mkdir()
        runners[run] = Runner(tmp_path / run)

    def start(run: str, commit: str, run_id: str) -> subprocess.Popen[str]:
        inputs = zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"})
        return runners[run].start(inputs, {"GITHUB_SHA": commit, "GITHUB_RUN_ID": run_id})

    a = start("A", OLDER, "201")
    b: subprocess.Popen[str] | None = None
    try:
        until(lambda: emu.find_requests("POST", "^/workspaces$"), "run A's create")
        b = start("B", NEWER, "202")
        first, second = ("B", "A") if order == "newer-switches-first" else ("A", "B")
        procs = {"A": a, "B": b}
        until(lambda: len(emu.find_requests("POST", "^/workspaces$")) == 2, "run B's create")
        results = {first: finish(runners[first], procs[first])}
        late.release()
        results[second] = finish(runners[second], procs[second])
    finally:
        late.release()
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()

    newer, older = release_of(emu, NEWER), release_of(emu, OLDER)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [newer]}, results["A"].stdout
    assert not emu.workspace(newer).deleted
    assert emu.workspace(older).deleted
    assert emu.workspace(old).deleted  # delete-previous, by whichever switched over it
    assert results["B"].status == "success", results["B"].stdout
    for result in results.values():
        assert result.returncode == 0, result.stdout
        assert "::error" not in result.stdout
        result.assert_no_token()
    a_result = results["A"]
    switches = emu.find_requests("PUT", r".*/workspace-connections$")
    if order == "newer-switches-first":
        assert len(switches) == 1  # B's: A wrote nothing
        assert a_result.status == "superseded", a_result.stdout
        deleted = [r.path for r in emu.find_requests("DELETE")]
        assert f"/workspaces/{newer}" not in deleted
    else:
        assert len(switches) == 2
        assert a_result.status == "success", a_result.stdout
        assert results["B"].outputs["previous-workspace-id"] == str(older)


def test_the_superseded_run_says_which_newer_release_won(emu: Emulator, tmp_path: Path) -> None:
    """The loser's status, notice, outputs and summary name the newer release (its
    workspace, commit and run) and say what this run left: nothing switched, its own
    workspace deleted."""
    live_release(emu)
    late = emu.add_fault("hold", method="POST", path=r"^/workspaces$", times=1)
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    runner_a, runner_b = Runner(tmp_path / "a"), Runner(tmp_path / "b")
    inputs = zd_inputs(emu, domain=DOMAIN)
    a = runner_a.start(inputs, {"GITHUB_SHA": OLDER, "GITHUB_RUN_ID": "201"})
    try:
        until(lambda: emu.find_requests("POST", "^/workspaces$"), "run A's create")
        b = runner_b.run(inputs, {"GITHUB_SHA": NEWER, "GITHUB_RUN_ID": "202"})
        assert b.status == "success", b.stdout
        late.release()
        result = finish(runner_a, a)
    finally:
        late.release()
        if a.poll() is None:
            a.kill()
            a.communicate()
    newer, older = release_of(emu, NEWER), release_of(emu, OLDER)
    assert result.returncode == 0, result.stdout
    assert result.status == "superseded"
    assert "::error" not in result.stdout
    (notice,) = notices(result)
    assert notice.startswith("::notice title=Superseded::"), notice
    assert (
        f"a newer release serves https://{DOMAIN}/: workspace {newer} (shop-bbbbbbb), commit "
        f"{NEWER[:12]} of run 202.1" in notice
    )
    assert "A release never replaces a newer one of the same repository" in notice
    assert "this run did not switch the domain" in notice
    assert f"The new workspace {older} was deleted" in notice
    assert emu.workspace(older).deleted
    assert result.outputs["workspace-id"] == str(newer)
    assert result.outputs["workspace-url"] == f"https://{emu.workspace(newer).dev_domain}"
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/"
    assert result.outputs["previous-workspace-id"] == ""
    assert "### ⏭️ Release superseded" in result.summary
    assert f"| **Workspace** | `{newer}` (shop-bbbbbbb) |" in result.summary
    assert "| **Superseded by** | run 202.1, commit bbbbbbbbbbbb, started 20" in result.summary


def test_a_release_that_started_before_the_live_one_stops_before_creating(
    emu: Emulator, runner: Runner
) -> None:
    """The live release started after this run (its mark says so): nothing is built."""
    live = emu.add_workspace(
        team_id=TEAM, name="shop-newer00", env=mark(domain=DOMAIN, started=stamp(-3600))
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}))
    assert result.returncode == 0, result.stdout
    assert result.status == "superseded"
    assert not emu.find_requests("POST")
    assert not emu.find_requests("PUT")
    assert not emu.find_requests("DELETE")
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [live]}
    assert f"workspace {live} (shop-newer00)" in notices(result)[0]


def test_a_rerun_of_an_older_workflow_run_never_replaces_a_newer_release(
    emu: Emulator, runner: Runner
) -> None:
    """Run 300 released a newer commit an hour ago; now someone re-runs the job of
    run 299 (an older workflow run, attempt 2). It starts later than the live
    release, but its workflow run is the older one: nothing is built or switched."""
    live = emu.add_workspace(
        team_id=TEAM, name="shop-newer00", env=mark(run="300.1", domain=DOMAIN, started=stamp(3600))
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}),
        extra={"GITHUB_RUN_ID": "299", "GITHUB_RUN_ATTEMPT": "2"},
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "superseded"
    assert not emu.find_requests("POST") and not emu.find_requests("PUT")
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [live]}
    assert "run 300.1" in notices(result)[0]


def test_the_mark_records_when_the_release_started_and_its_route(
    emu: Emulator, runner: Runner
) -> None:
    """``started`` is the action's own start (UTC, milliseconds); a release serving
    the path with an old mark (no started: an earlier version) counts as older."""
    legacy = emu.add_workspace(team_id=TEAM, name="shop-legacy", env=mark(domain=None))
    emu.add_domain(TEAM, DOMAIN, {"/api": [legacy]})
    before = datetime.now(UTC)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"domain-path": "/api/"}))
    after = datetime.now(UTC)
    assert result.status == "success", result.stdout
    (new,) = created(emu)
    value = emu.workspace(new).env["CODESPHERE_RELEASE"]
    assert f" domain={DOMAIN} path=/api state=released started=" in value
    started = STARTED.search(value)
    assert started, value
    moment = datetime.strptime(started.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= moment <= after
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/api": [new]}


def staged_and_newer(emu: Emulator) -> tuple[int, int]:
    """A release staged two hours ago (switch: false) and a newer one that serves
    the domain now; both made by the action, both up."""
    staged = emu.add_workspace(
        team_id=TEAM,
        name="shop-5ta9ed0",
        env=mark(run="90.1", commit="5" * 12, domain=DOMAIN, started=stamp(7200)),
    )
    newer = emu.add_workspace(
        team_id=TEAM,
        name="shop-bbbbbbb",
        env=mark(run="91.1", commit=NEWER[:12], domain=DOMAIN, started=stamp(3600)),
    )
    start_run_stages(emu, staged, newer)
    emu.add_domain(TEAM, DOMAIN, {"/": [newer]})
    emu.clear_requests()
    return staged, newer


def test_promote_never_replaces_a_newer_release(emu: Emulator, runner: Runner) -> None:
    staged, newer = staged_and_newer(emu)
    result = runner.run(
        zd_inputs(
            emu,
            flow="promote",
            domain=DOMAIN,
            **{"workspace-id": str(staged), "delete-previous": "true"},
        )
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "superseded", result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [newer]}
    assert not emu.find_requests("PUT")
    assert not emu.find_requests("DELETE")
    (notice,) = notices(result)
    assert f"workspace {newer} (shop-bbbbbbb), commit {NEWER[:12]} of run 91.1" in notice
    assert f"workspace {staged} (shop-5ta9ed0)" in notice
    assert result.outputs["workspace-id"] == str(newer)
    assert "### ⏭️ Promotion superseded" in result.summary


def test_rollback_goes_back_on_purpose_and_says_the_rule_does_not_apply(
    emu: Emulator, runner: Runner
) -> None:
    staged, _newer = staged_and_newer(emu)
    result = runner.run(rollback_inputs(emu, staged))
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [staged]}
    assert "A rollback goes back on purpose" in result.stdout
    assert "the rule that a release never replaces a newer one does not apply" in result.stdout


# -- 2. dry-run: the plan, and never a write -----------------------------------------------


def writes(emu: Emulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.requests if r.method not in ("GET", "HEAD")]


def assert_planned(result: ActionRun, emu: Emulator, github: FakeGitHub | None = None) -> str:
    """A dry run that would go ahead: exit 0, status planned, one notice, not one
    write; returns the log's plan group."""
    assert result.returncode == 0, result.stdout
    assert result.status == "planned", result.stdout
    assert writes(emu) == []
    if github is not None:
        assert [r.summary for r in github.requests if r.method != "GET"] == []
    assert "::error" not in result.stdout
    (notice,) = [n for n in notices(result) if n.startswith("::notice title=Dry run::")]
    assert "nothing was changed" in notice
    assert "planned (dry run)" in result.summary
    result.assert_no_token()
    plan = re.search(
        r"::group::Plan \(dry run: nothing is changed\)\n(.*?)::endgroup::", result.stdout, re.S
    )
    assert plan, result.stdout
    return plan.group(1)


def test_a_zero_downtime_dry_run_shows_the_plan_the_real_run_then_carries_out(
    emu: Emulator, runner: Runner
) -> None:
    """A leftover of an earlier attempt, an earlier release and a workspace made by
    hand on the path: the plan names what it would create, the stages, the map
    before and after, what it deletes and keeps; nothing is written. The real run
    that follows does exactly that."""
    old = emu.add_workspace(
        team_id=TEAM, name="shop-old", env=mark(domain=DOMAIN, started=stamp(3600))
    )
    hand = emu.add_workspace(team_id=TEAM, name="hand-made")
    api = emu.add_workspace(team_id=TEAM, name="shop-api")
    leftover = emu.add_workspace(team_id=TEAM, name=NAME, env=mark(state="building"))
    emu.add_domain(TEAM, DOMAIN, {"/": [old, hand], "/api": [api]})
    inputs = zd_inputs(
        emu,
        domain=DOMAIN,
        test="true",
        env="FEATURE_X=value-never-shown",
        **{
            "secret-env": "DATABASE_URL=postgres://never-shown@db/shop",
            "delete-previous": "true",
            "health-check-path": "/healthz",
            "dry-run": "true",
        },
    )
    attempt = {"GITHUB_RUN_ATTEMPT": "2"}  # the leftover is attempt 1's
    result = runner.run(inputs, extra=attempt)
    plan = assert_planned(result, emu)
    assert f"Create workspace {NAME} in team {TEAM}: plan {PLAN}, 1 replica, branch main" in plan
    assert "env FEATURE_X and 1 from secret-env" in plan
    shown = [line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert "never-shown" not in "\n".join(shown) + result.summary  # names, never values
    assert "Stages: prepare, test, run" in plan
    assert "Health check: GET /healthz" in plan
    assert f"Point https://{DOMAIN}/ at the new workspace ({NAME})" in plan
    assert f"Map of {DOMAIN} before: / -> {old}, {hand}; /api -> {api}" in plan
    assert f"Map of {DOMAIN} after: / -> the new workspace ({NAME}); /api -> {api}" in plan
    assert f"Delete workspace {leftover} ({NAME}): left over from an earlier attempt" in plan
    assert f"Delete workspace {old} (shop-old): it served / before" in plan
    assert f"Keep workspace {hand} (hand-made): it was not created by codesphere-release" in plan
    summary = result.summary
    assert "#### Plan (dry run)" in summary
    assert f"| {old} (shop-old) | delete |" in summary
    assert f"| {hand} (hand-made) | keep |" in summary
    assert f"after: / -> the new workspace ({NAME}); /api -> {api}" in summary
    assert all(not emu.workspace(w).deleted for w in (old, hand, api, leftover))

    emu.clear_requests()
    # No app answers in this emulator: the real run skips the health check.
    real = runner.run({**inputs, "dry-run": "false", "health-check-path": ""}, extra=attempt)
    assert real.status == "success", real.stdout
    (new,) = [w.id for w in emu.workspaces(TEAM, name=NAME)]
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert sorted(r.path for r in emu.find_requests("DELETE")) == sorted(
        [f"/workspaces/{leftover}", f"/workspaces/{old}"]
    )
    assert not emu.workspace(hand).deleted


def test_a_simple_dry_run_neither_wakes_nor_pulls(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop-live", running=False)
    result = runner.run(
        {**zd_inputs(emu, flow="simple"), "workspace-id": str(ws), "dry-run": "true"}
    )
    plan = assert_planned(result, emu)
    assert f"Wake workspace {ws} (shop-live): it is not running" in plan
    assert f"git pull origin (the current branch) in workspace {ws} (shop-live)" in plan
    assert "Stages: prepare, run" in plan
    assert not emu.workspace(ws).running
    assert result.outputs["workspace-id"] == str(ws)


@pytest.mark.parametrize("existing", [False, True], ids=["first-push", "later-push"])
def test_a_preview_dry_run_reads_the_pull_request_and_writes_nothing(
    emu: Emulator, runner: Runner, existing: bool
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    ws = (
        emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
        if existing
        else None
    )
    with FakeGitHub(token=GH_TOKEN) as github:
        github.set_pull(PR)
        result = runner.run(
            preview_inputs(emu, **{"github-token": GH_TOKEN, "dry-run": "true"}),
            extra={**pr_event(runner, action="synchronize"), "GITHUB_API_URL": github.url},
        )
        plan = assert_planned(result, emu, github)
        assert github.summaries() == [f"GET /repos/acme/shop/pulls/{PR}"]
        assert github.deployments == {} and github.comments == {}
    assert f"GitHub says pull request #{PR} is open" in plan
    if ws is None:
        assert f"Create workspace {PREVIEW} in team {TEAM}: plan {PLAN}" in plan
        assert f"branch {BRANCH}" in plan
        assert emu.workspaces(TEAM) == []
    else:
        assert f"Update preview workspace {ws} ({PREVIEW}) of pull request #{PR}" in plan
        assert f"git pull origin/{BRANCH} in workspace {ws} ({PREVIEW})" in plan
        assert "run=1.1" in emu.workspace(ws).env["CODESPHERE_RELEASE"]  # the mark as it was


def test_a_teardown_dry_run_lists_what_it_would_delete(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    namesake = emu.add_workspace(team_id=TEAM, name=PREVIEW)
    result = runner.run(
        teardown_inputs(emu, **{"dry-run": "true"}), extra=pr_event(runner, action="closed")
    )
    plan = assert_planned(result, emu)
    assert f"Delete workspace {ws} ({PREVIEW}): the preview of pull request #{PR}" in plan
    assert (
        f"Keep workspace {namesake} ({PREVIEW}): it was not created by codesphere-release" in plan
    )
    assert not emu.workspace(ws).deleted


@pytest.mark.parametrize("flow", ["promote", "rollback"])
def test_a_promote_or_rollback_dry_run_checks_the_workspace_and_names_the_map_after(
    emu: Emulator, runner: Runner, flow: str
) -> None:
    blue, green, api = rollback_setup(emu)
    result = runner.run(
        rollback_inputs(emu, blue, flow=flow, **{"delete-previous": "true", "dry-run": "true"})
    )
    plan = assert_planned(result, emu)
    assert f"Point https://{DOMAIN}/ at workspace {blue} (shop-blue)" in plan
    assert f"Map of {DOMAIN} before: / -> {green}; /api -> {api}" in plan
    assert f"Map of {DOMAIN} after: / -> {blue}; /api -> {api}" in plan
    # shop-green was made by hand: delete-previous keeps it, and says so.
    assert f"Keep workspace {green} (shop-green): it was not created by codesphere-release" in plan
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}


def test_a_dry_run_that_would_fail_fails_the_same_way(emu: Emulator, runner: Runner) -> None:
    emu.add_domain(TEAM, DOMAIN, {})
    result = runner.run(zd_inputs(emu, domain="nope.example.com", **{"dry-run": "true"}))
    assert result.status == "failed"
    assert "is not a domain of team 7" in result.assert_one_error()
    assert writes(emu) == []


def test_a_dry_run_sends_no_commit_status_or_deployment(emu: Emulator, runner: Runner) -> None:
    """With github-token a real run records a GitHub deployment; a dry run does not."""
    with FakeGitHub(token=GH_TOKEN) as github:
        result = runner.run(
            zd_inputs(emu, **{"github-token": GH_TOKEN, "dry-run": "true"}),
            extra={"GITHUB_API_URL": github.url},
        )
        assert_planned(result, emu, github)
        assert github.requests == []
    assert SHA[:7] in result.stdout  # the name it would create: shop-<sha7>
