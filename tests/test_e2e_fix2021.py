"""End to end: the fixes of the review of issues 20 and 21 beyond its own tests
(``test_e2e_review2021.py``): the other side of each rule, and the cases the
review named for other flows.
"""

from __future__ import annotations

from emulator import Emulator
from emulator.runner import SHA, Runner, mark, stamp

from .test_e2e_prune import DAY, deleted, prune_inputs, row
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs


def notices(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::notice")]


# -- superseded: the notice names what decided ---------------------------------------------


def test_within_one_run_the_superseded_notice_names_the_starts(
    emu: Emulator, runner: Runner
) -> None:
    """Attempt 1 of run 1 meets attempt 2 of the same run, which started a minute
    from now (a re-run that switched first): the runs cannot decide, the starts do,
    and the notice says so."""
    later = stamp(-60)
    live = emu.add_workspace(
        team_id=TEAM, name="shop-attempt2", env=mark(run="1.2", domain=DOMAIN, started=later)
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.status == "superseded", result.stdout
    (notice,) = notices(result.stdout)
    assert f"which started at {later}, later than this release" in notice, notice
    assert "workflow run (" not in notice, notice


# -- prune: releases without a domain, one group per app -----------------------------------


def test_the_mark_names_the_app_a_release_is_of(emu: Emulator, runner: Runner) -> None:
    """workspace-name is the app; without it, the repository part of the default name."""
    emu.add_domain(TEAM, DOMAIN, {})
    named = runner.run(zd_inputs(emu, **{"workspace-name": "shop-worker"}))
    assert named.status == "success", named.stdout
    default = runner.run(zd_inputs(emu), extra={"GITHUB_SHA": "c" * 40})
    assert default.status == "success", default.stdout
    worker, shop = sorted(created(emu))
    assert " app=shop-worker state=released " in emu.workspace(worker).env["CODESPHERE_RELEASE"]
    assert emu.workspace(shop).name == "shop-ccccccc"
    assert " app=shop state=released " in emu.workspace(shop).env["CODESPHERE_RELEASE"]


def test_prune_ranks_the_releases_without_a_domain_per_app(emu: Emulator, runner: Runner) -> None:
    """Marks that name their app: the worker's one release stays, the cron job's
    oldest of three goes with keep: 1 (the newest is current, one to roll back to)."""
    worker = emu.add_workspace(
        team_id=TEAM, name="shop-worker", env=mark(run="100.1", started=stamp(3 * DAY), app="w")
    )
    crons = [
        emu.add_workspace(
            team_id=TEAM, name=name, env=mark(run=run, started=stamp(ago), app="shop-cron")
        )
        for name, run, ago in (
            ("shop-cron", "200.1", 2 * DAY),
            ("shop-cron-2", "300.1", DAY),
            ("shop-cron-3", "400.1", 0),
        )
    ]
    emu.add_domain(TEAM, DOMAIN, {})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu))
    assert result.status == "success", result.stdout
    assert deleted(emu) == {crons[0]}
    assert "the newest release without a domain of app w" in row(result, worker, "kept")
    assert "of app shop-cron, kept to roll back to" in row(result, crons[1], "kept")


def test_prune_reads_the_app_of_an_earlier_versions_mark_from_a_default_name(
    emu: Emulator, runner: Runner
) -> None:
    """Marks without the app (an earlier version): ``shop-<sha7>`` (its mark's
    commit) can only be the app ``shop``'s, so those rank as one app; a name that
    may be another app's (``worker-2``: the app worker, or worker-2) is kept."""
    shop = [
        emu.add_workspace(
            team_id=TEAM,
            name=f"shop-{commit[:7]}{suffix}",
            env=mark(run=run, commit=commit[:12], started=stamp(ago)),
        )
        for commit, suffix, run, ago in (
            ("a" * 40, "", "100.1", 3 * DAY),
            ("b" * 40, "-2", "200.1", 2 * DAY),
            (SHA, "", "300.1", DAY),
        )
    ]
    worker = emu.add_workspace(
        team_id=TEAM, name="worker-2", env=mark(run="50.1", started=stamp(9 * DAY))
    )
    emu.add_domain(TEAM, DOMAIN, {})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu))
    assert result.status == "success", result.stdout
    assert deleted(emu) == {shop[0]}
    assert "may be another app's" in row(result, worker, "kept")
