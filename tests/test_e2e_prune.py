"""End to end: ``flow: prune`` (issue 21), against the emulator and the fake GitHub.

Prune deletes what this action made for this repository and no longer needs:
previews whose pull request is closed (with github-token) or that were not
updated for ``max-age``; leftovers of failed or cancelled runs (marked
building, serving nothing, their run over: with github-token as GitHub says,
else older than ``max-age``); earlier releases beyond the newest ``keep`` per
domain path. Never a workspace that serves any domain, never one without this
repository's mark. Its job summary is a table: deleted, kept, and why. A dry
run lists what it would delete; a cancel ends it within 2 s.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from emulator import Emulator
from emulator.events import pr_event
from emulator.github import FakeGitHub
from emulator.runner import APP, TOKEN, ActionRun, Runner, mark, stamp

from .test_e2e_zero_downtime import DOMAIN, TEAM

GH_TOKEN = "ghs_fakePruneToken0123456789abcdefgh"
DAY, HOUR, MINUTE = 86400, 3600, 60


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=GH_TOKEN) as fake:
        yield fake


def prune_inputs(emu: Emulator, **more: str) -> dict[str, str]:
    return {"api-token": TOKEN, "api-url": emu.url, "flow": "prune", "team-id": str(TEAM), **more}


def deleted(emu: Emulator) -> set[int]:
    return {int(r.path.rsplit("/", 1)[1]) for r in emu.find_requests("DELETE") if r.status == 200}


def row(result: ActionRun, workspace: int, action: str) -> str:
    """The summary table's row of ``workspace``, which must say ``action``."""
    found = [
        line
        for line in result.summary.splitlines()
        if line.startswith(f"| {workspace} (") and f" | {action} | " in line
    ]
    assert len(found) == 1, f"no '{action}' row for {workspace}:\n{result.summary}"
    return found[0]


class Team:
    """A team that mixes everything prune meets, with what it must do to each."""

    def __init__(self, emu: Emulator, github: FakeGitHub | None) -> None:
        add = emu.add_workspace
        self.hand = add(team_id=TEAM, name="hand-made", age=90 * DAY)
        self.other_repo = add(
            team_id=TEAM,
            name="other-pr-1",
            age=60 * DAY,
            env=mark(repo="acme/other", flow="preview", pr=1, started=stamp(60 * DAY)),
        )
        self.live = add(
            team_id=TEAM, name="shop-live", env=mark(run="300.1", started=stamp(DAY), domain=DOMAIN)
        )
        self.rollback = add(
            team_id=TEAM,
            name="shop-prev",
            env=mark(run="290.1", started=stamp(2 * DAY), domain=DOMAIN),
        )
        self.ancient = add(
            team_id=TEAM,
            name="shop-old",
            env=mark(run="280.1", started=stamp(3 * DAY), domain=DOMAIN),
        )
        self.ancient2 = add(
            team_id=TEAM,
            name="shop-older",
            env=mark(run="270.1", started=stamp(4 * DAY), domain=DOMAIN),
        )
        self.staged = add(
            team_id=TEAM,
            name="shop-staged",
            env=mark(run="310.1", started=stamp(HOUR), domain=DOMAIN),
        )
        self.api_live = add(
            team_id=TEAM,
            name="shop-api",
            env=mark(run="300.1", started=stamp(DAY), domain=DOMAIN, path="/api"),
        )
        self.api_prev = add(
            team_id=TEAM,
            name="shop-api-prev",
            env=mark(run="250.1", started=stamp(9 * DAY), domain=DOMAIN, path="/api"),
        )
        # Releases of the app "shop" without a domain (their mark names the app).
        self.bare_new = add(
            team_id=TEAM, name="shop-bare", env=mark(run="320.1", started=stamp(HOUR), app=APP)
        )
        self.bare_old = add(
            team_id=TEAM,
            name="shop-bare-old",
            env=mark(run="220.1", started=stamp(5 * DAY), app=APP),
        )
        self.bare_oldest = add(
            team_id=TEAM,
            name="shop-bare-oldest",
            env=mark(run="210.1", started=stamp(6 * DAY), app=APP),
        )
        self.legacy = add(team_id=TEAM, name="shop-legacy", age=40 * DAY, env=mark(run="200.1"))
        self.closed_preview = add(
            team_id=TEAM,
            name="shop-pr-11",
            env=mark(flow="preview", pr=11, started=stamp(HOUR)),
        )
        self.open_preview = add(
            team_id=TEAM,
            name="shop-pr-12",
            env=mark(flow="preview", pr=12, started=stamp(HOUR)),
        )
        self.stale_preview = add(
            team_id=TEAM,
            name="shop-pr-13",
            env=mark(flow="preview", pr=13, started=stamp(10 * DAY)),
        )
        self.fork_preview = add(  # an earlier version's preview of a fork's pull request
            team_id=TEAM, name="shop-pr-14", age=DAY, env=mark(flow="preview", pr=14)
        )
        self.leftover_done = add(
            team_id=TEAM,
            name="shop-done",
            env=mark(run="330.1", state="building", started=stamp(HOUR)),
        )
        self.leftover_running = add(
            team_id=TEAM,
            name="shop-running",
            env=mark(run="331.1", state="building", started=stamp(10 * MINUTE)),
        )
        self.leftover_young = add(
            team_id=TEAM,
            name="shop-young",
            env=mark(run="332.1", state="building", started=stamp(10 * MINUTE)),
        )
        self.leftover_old = add(
            team_id=TEAM,
            name="shop-stuck",
            env=mark(run="333.1", state="building", started=stamp(10 * DAY)),
        )
        emu.add_domain(TEAM, DOMAIN, {"/": [self.live], "/api": [self.api_live]})
        emu.add_domain(TEAM, "docs.example.com", {"/": [self.hand]})
        if github is not None:
            github.set_pull(11, state="closed", merged=True)
            github.set_pull(12)
            github.set_pull(13)
            github.set_pull(14, state="closed", head_repository="someone/shop")
            github.set_run(330, status="completed", conclusion="failure")
            github.set_run(331, status="in_progress")
        emu.clear_requests()

    def expected(self) -> set[int]:
        return {
            self.ancient,
            self.ancient2,
            self.bare_oldest,
            self.closed_preview,
            self.stale_preview,
            self.fork_preview,
            self.leftover_done,
            self.leftover_old,
        }


def test_prune_deletes_exactly_what_this_repository_left_behind(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    team = Team(emu, github)
    result = runner.run(
        prune_inputs(emu, **{"github-token": GH_TOKEN}), extra={"GITHUB_API_URL": github.url}
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "success", result.stdout
    assert deleted(emu) == team.expected()
    for workspace in emu.workspaces(TEAM, include_deleted=True):
        assert workspace.deleted == (workspace.id in team.expected()), workspace.name
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [team.live], "/api": [team.api_live]}
    assert result.outputs["workspace-id"] == ",".join(map(str, sorted(team.expected())))
    assert [r.method for r in github.requests if r.method != "GET"] == []
    # One read of the team's domains right before each delete (the deletion rule).
    assert len(emu.find_requests("GET", rf"^/domains/team/{TEAM}$")) >= len(team.expected())

    assert "| Workspace | Action | Why |" in result.summary
    assert "not created by codesphere-release" in row(result, team.hand, "kept")
    assert "for acme/other" in row(result, team.other_repo, "kept")
    assert f"it serves {DOMAIN}/" in row(result, team.live, "kept")
    assert "kept to roll back to (keep: 1)" in row(result, team.rollback, "kept")
    assert f"an earlier release of {DOMAIN}/ beyond the newest 1 (keep: 1)" in row(
        result, team.ancient, "deleted"
    )
    assert f"newer than the release that serves {DOMAIN}/" in row(result, team.staged, "kept")
    assert "kept to roll back to (keep: 1)" in row(result, team.api_prev, "kept")
    assert "the newest release without a domain" in row(result, team.bare_new, "kept")
    assert "kept to roll back to (keep: 1)" in row(result, team.bare_old, "kept")
    assert "without a domain beyond the newest 1" in row(result, team.bare_oldest, "deleted")
    assert "earlier version of codesphere-release" in row(result, team.legacy, "kept")
    assert "pull request #11 is closed" in row(result, team.closed_preview, "deleted")
    assert "pull request #12 is open" in row(result, team.open_preview, "kept")
    assert "not updated for 10 days (max-age 7 days)" in row(result, team.stale_preview, "deleted")
    assert "pull request #14 is closed" in row(result, team.fork_preview, "deleted")
    assert "run 330.1" in row(result, team.leftover_done, "deleted")
    assert "is over (failure)" in row(result, team.leftover_done, "deleted")
    assert "run 331.1 is still in_progress" in row(result, team.leftover_running, "kept")
    assert "run 332.1" in row(result, team.leftover_young, "kept")
    assert "10 days ago" in row(result, team.leftover_old, "deleted")
    assert "### ✅ Pruned · Codesphere `prune` flow" in result.summary
    result.assert_no_token()
    result.assert_no_token(GH_TOKEN)


def test_a_prune_dry_run_lists_what_it_would_delete_and_deletes_nothing(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    team = Team(emu, github)
    result = runner.run(
        prune_inputs(emu, **{"github-token": GH_TOKEN, "dry-run": "true"}),
        extra={"GITHUB_API_URL": github.url},
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "planned"
    assert [r for r in emu.requests if r.method != "GET"] == []
    assert [r for r in github.requests if r.method != "GET"] == []
    for workspace in team.expected():
        assert "| delete |" in row(result, workspace, "delete")
        assert f"Delete workspace {workspace} (" in result.stdout
    assert "| keep |" in row(result, team.live, "keep")
    assert not any(w.deleted for w in emu.workspaces(TEAM, include_deleted=True))
    assert "#### Plan (dry run)" in result.summary


@pytest.mark.parametrize("keep", [0, 2])
def test_keep_is_how_many_earlier_releases_stay_per_domain_path(
    emu: Emulator, runner: Runner, github: FakeGitHub, keep: int
) -> None:
    team = Team(emu, github)
    result = runner.run(
        prune_inputs(emu, keep=str(keep), **{"github-token": GH_TOKEN}),
        extra={"GITHUB_API_URL": github.url},
    )
    assert result.status == "success", result.stdout
    releases = {
        team.rollback,
        team.ancient,
        team.ancient2,
        team.api_prev,
        team.bare_old,
        team.bare_oldest,
    }
    gone = deleted(emu) & releases
    # keep: 0 leaves what serves, the staged release newer than it, and the newest
    # release without a domain (nothing serves that group: it is the current one).
    if keep == 0:
        assert gone == releases
    else:
        assert gone == {team.ancient2}
    for staying in (team.live, team.api_live, team.staged, team.legacy, team.bare_new):
        assert not emu.workspace(staying).deleted


def test_without_github_token_prune_goes_by_max_age(emu: Emulator, runner: Runner) -> None:
    """No token: whether a pull request closed or a run is over cannot be asked, so
    previews and leftovers go when they are older than max-age (the mark's started,
    or an earlier version's workspace's createdAt)."""
    team = Team(emu, None)
    result = runner.run(prune_inputs(emu, **{"max-age": "2d"}))
    assert result.status == "success", result.stdout
    by_age = {
        team.stale_preview,
        team.leftover_old,
        team.ancient,
        team.ancient2,
        team.bare_oldest,
    }
    assert deleted(emu) == by_age
    assert "max-age 2 days" in row(result, team.closed_preview, "kept")
    assert "max-age 2 days" in row(result, team.fork_preview, "kept")  # created 1 day ago
    assert "run 330.1" in row(result, team.leftover_done, "kept")


def test_a_forks_preview_an_earlier_version_made_is_cleared_by_a_scheduled_prune(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    """The fork's teardown is skipped and its notice points at prune; prune, run on a
    schedule (no pull request in its event), then deletes that preview once GitHub
    says the pull request is closed."""
    preview = emu.add_workspace(
        team_id=TEAM, name="shop-pr-14", age=HOUR, env=mark(flow="preview", pr=14)
    )
    github.set_pull(14, state="closed", head_repository="someone/shop")
    teardown = runner.run(
        {
            "api-token": TOKEN,
            "api-url": emu.url,
            "flow": "teardown",
            "team-id": str(TEAM),
        },
        extra=pr_event(runner, number=14, action="closed", head_repository="someone/shop"),
    )
    assert teardown.status == "skipped"
    assert "let a scheduled flow: prune clear it" in teardown.stdout
    assert not emu.workspace(preview).deleted
    result = runner.run(
        prune_inputs(emu, **{"github-token": GH_TOKEN}),
        extra={"GITHUB_API_URL": github.url, "GITHUB_EVENT_NAME": "schedule"},
    )
    assert result.status == "success", result.stdout
    assert emu.workspace(preview).deleted
    assert "pull request #14 is closed" in row(result, preview, "deleted")


def test_when_github_cannot_tell_prune_warns_once_and_goes_by_age(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    team = Team(emu, github)
    github.fail("GET", r"/pulls/\d+$", 403)
    github.fail("GET", r"/actions/runs/", 403)
    result = runner.run(
        prune_inputs(emu, **{"github-token": GH_TOKEN}), extra={"GITHUB_API_URL": github.url}
    )
    assert result.status == "success", result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 2, warnings  # one for pull requests, one for workflow runs
    assert any("pull-requests: read" in w for w in warnings)
    assert any("actions: read" in w for w in warnings)
    assert not emu.workspace(team.closed_preview).deleted  # young: its state unknown
    assert emu.workspace(team.stale_preview).deleted
    assert not emu.workspace(team.leftover_done).deleted  # young: its run's end unknown
    assert emu.workspace(team.leftover_old).deleted


def test_a_delete_that_fails_fails_the_prune_after_the_others(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    team = Team(emu, github)
    emu.add_fault(
        "status", method="DELETE", path=rf"^/workspaces/{team.ancient}$", status=403, times=None
    )
    result = runner.run(
        prune_inputs(emu, **{"github-token": GH_TOKEN}), extra={"GITHUB_API_URL": github.url}
    )
    assert result.returncode == 1
    assert result.status == "failed"
    error = result.assert_one_error()
    assert f"could not delete workspace {team.ancient}" in error
    assert deleted(emu) == team.expected() - {team.ancient}
    assert "not deleted" in row(result, team.ancient, "not deleted")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cancel_during_prune_exits_within_two_seconds(
    emu: Emulator, runner: Runner, sig: signal.Signals
) -> None:
    old = [
        emu.add_workspace(
            team_id=TEAM,
            name=f"shop-pr-{n}",
            env=mark(flow="preview", pr=n, started=stamp(30 * DAY)),
        )
        for n in range(100, 130)
    ]
    emu.add_domain(TEAM, DOMAIN, {})
    emu.add_fault("delay", method="DELETE", path=r"^/workspaces/\d+$", seconds=0.5, times=None)
    proc = runner.start(prune_inputs(emu))
    try:
        deadline = time.monotonic() + 30
        while len(emu.find_requests("DELETE")) < 3:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "prune never got to its deletes"
            time.sleep(0.02)
        result, took = runner.cancel(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert took < 2.0, (took, result.stdout)
    assert result.status == "cancelled", result.stdout
    assert "cancelled" in result.assert_one_error()
    gone = [w for w in old if emu.workspace(w).deleted]
    assert 2 <= len(gone) < len(old)
    assert "| Workspace | Action | Why |" in result.summary  # what it did so far
    result.assert_no_token()
