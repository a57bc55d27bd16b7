"""End to end: what the adversarial review of issues 20 and 21 (merged as
3fd59e0, 3719c65 and 48da45d) found. Each test was marked xfail(strict=True)
while its defect was on main; each fix removed its mark, so every test here
must pass (the other sides of each rule: test_e2e_fix2021.py).

- prune ranks releases by the mark's ``started``, the superseded rule by run
  id: it deletes the way back (keep: 1) or a newer staged release (keep: 0);
- prune puts every release without a domain into one group, whatever app
  (workspace-name) it is: a second app pushes the first one's only release out;
- a release that switched but could not mark itself released is deleted by a
  later prune as "never released", though it is the next release's way back;
- a hand-made workspace with a copy of a release's env (its mark, its per-run
  id) is taken for a release: prune deletes it, or it pushes the way back out;
- an app whose healthy answer says "Too Many Requests" never passes the health
  check (taken for Codesphere's placeholder page);
- a dry run with secret-store: vault plans secret-env as env variables and
  never mentions the vault;
- a release superseded by run id is told the winner started "later" than it,
  when it started an hour earlier.
"""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.github import FakeGitHub
from emulator.runner import Runner, mark, stamp

from .test_e2e_guardrails import assert_planned
from .test_e2e_health import HEALTH, resolve, served
from .test_e2e_prune import DAY, GH_TOKEN, deleted, prune_inputs, row
from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, zd_inputs

# -- prune orders releases by the clock, the superseded rule by run id -----------------


@pytest.mark.parametrize("keep", [0, 1])
def test_prune_ranks_releases_as_the_superseded_rule_does(
    emu: Emulator, runner: Runner, keep: int
) -> None:
    """Run 300 serves the domain. Run 310 was created after it and staged
    (switch: false) while run 300's job still waited (a slow test job, an
    environment approval), so its action started earlier; run 290 served before
    run 300 (its previous-workspace-id, the way back). By the superseded rule
    (run ids) run 310 is newer than what serves, and run 290 is the newest
    earlier release. Prune must keep the staged release whatever ``keep`` is,
    and with keep: 1 the way back, run 290."""
    live = emu.add_workspace(
        team_id=TEAM, name="shop-live", env=mark(run="300.1", started=stamp(DAY), domain=DOMAIN)
    )
    staged = emu.add_workspace(
        team_id=TEAM,
        name="shop-staged",
        env=mark(run="310.1", started=stamp(DAY + 600), domain=DOMAIN),
    )
    previous = emu.add_workspace(
        team_id=TEAM,
        name="shop-prev",
        env=mark(run="290.1", started=stamp(3 * DAY), domain=DOMAIN),
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu, keep=str(keep)))
    assert result.status == "success", result.stdout
    assert not emu.workspace(staged).deleted, row(result, staged, "deleted")
    if keep == 1:
        assert not emu.workspace(previous).deleted, row(result, previous, "deleted")
        assert deleted(emu) == set()
    else:
        assert deleted(emu) == {previous}


# -- dry-run: the plan with secret-store: vault ------------------------------------------


def test_a_dry_run_with_the_vault_plans_the_vault_not_env_variables(
    emu: Emulator, runner: Runner
) -> None:

    emu.add_domain(TEAM, DOMAIN, {"/": []})
    inputs = zd_inputs(
        emu,
        domain=DOMAIN,
        env="MODE=prod",
        **{
            "secret-env": "DB_PASSWORD=never-shown-3c1",
            "secret-store": "vault",
            "dry-run": "true",
        },
    )
    plan = assert_planned(runner.run(inputs), emu)
    (create,) = [line for line in plan.splitlines() if f"Create workspace {NAME}" in line]
    # The create the real run sends has MODE and the mark alone (the secret goes into
    # the vault after the workspace runs, test_e2e_create_settings).
    assert "from secret-env" not in create, create
    assert "vault" in plan, plan


# -- health check: the placeholder phrases in the app's own answer -----------------------


def test_an_app_whose_health_answer_mentions_the_phrase_is_not_the_placeholder(
    emu: Emulator, runner: Runner
) -> None:
    """A health endpoint that reports its rate limiter (200, JSON, 80 bytes) says
    "Too Many Requests" in its own words. The placeholder page is Codesphere's,
    not the app's JSON; the release is healthy and must go ahead."""

    body = '{"status":"ok","rateLimit":{"rejects":"429 Too Many Requests","count":0}}'
    served(emu, body=body)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.status == "success", result.stdout


# -- prune: releases without a domain are one group, whatever app they are ---------------


def test_prune_never_deletes_the_only_release_of_another_app_without_a_domain(
    emu: Emulator, runner: Runner
) -> None:
    """One repository, two apps released without a domain (zero-downtime with
    workspace-name: shop-worker, and workspace-name: shop-cron): a queue worker
    and a cron job serve no domain. The worker was released once (run 100), the
    cron job twice since (runs 200 and 300). With keep: 1 nothing may go: the
    worker's one release is its current one."""
    worker = emu.add_workspace(
        team_id=TEAM, name="shop-worker", env=mark(run="100.1", started=stamp(3 * DAY))
    )
    cron_old = emu.add_workspace(
        team_id=TEAM, name="shop-cron", env=mark(run="200.1", started=stamp(2 * DAY))
    )
    cron = emu.add_workspace(
        team_id=TEAM, name="shop-cron-2", env=mark(run="300.1", started=stamp(DAY))
    )
    emu.add_domain(TEAM, DOMAIN, {})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu))
    assert result.status == "success", result.stdout
    assert not emu.workspace(worker).deleted, row(result, worker, "deleted")
    assert not emu.workspace(cron).deleted and not emu.workspace(cron_old).deleted


# -- prune: a release whose mark could not say "released" --------------------------------


def test_prune_keeps_the_way_back_when_its_mark_never_said_released(
    emu: Emulator, runner: Runner
) -> None:
    """Run 290 switches the domain, but the mark's update is turned down (a 400;
    a 5xx does the same after a minute of retries, a cancel right after the
    switch leaves the same mark): the release succeeds with a warning, its mark
    still says building. Run 300 then releases the next commit; its
    previous-workspace-id is run 290's workspace, the way back. A prune
    afterwards (GitHub: both runs completed) must not delete that workspace as
    "never released"."""

    old = emu.add_workspace(
        team_id=TEAM, name="shop-old", env=mark(run="280.1", started=stamp(DAY), domain=DOMAIN)
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    rule = emu.add_fault(
        "status", method="PUT", path=r"^/workspaces/\d+/env-vars$", status=400, times=None
    )
    first = runner.run(
        zd_inputs(emu, domain=DOMAIN), extra={"GITHUB_RUN_ID": "290", "GITHUB_SHA": "a" * 40}
    )
    assert first.status == "success", first.stdout
    assert "could not mark workspace" in first.stdout
    way_back = int(first.outputs["workspace-id"])
    rule.remove()
    second = runner.run(
        zd_inputs(emu, domain=DOMAIN), extra={"GITHUB_RUN_ID": "300", "GITHUB_SHA": "b" * 40}
    )
    assert second.status == "success", second.stdout
    assert second.outputs["previous-workspace-id"] == str(way_back)

    with FakeGitHub(token=GH_TOKEN) as github:
        github.set_run(290, status="completed", conclusion="success")
        github.set_run(300, status="completed", conclusion="success")
        emu.clear_requests()
        result = runner.run(
            prune_inputs(emu, **{"github-token": GH_TOKEN}), extra={"GITHUB_API_URL": github.url}
        )
    assert result.status == "success", result.stdout
    assert not emu.workspace(way_back).deleted, row(result, way_back, "deleted")


# -- superseded: the notice's reason ------------------------------------------------------


def test_the_superseded_notice_gives_the_reason_that_decided(emu: Emulator, runner: Runner) -> None:
    """A re-run of the older workflow run 299 meets run 300's release, which started
    an hour ago. The rule decided by the workflow runs (48da45d); the notice must
    not claim that run 300 started later than this run: it did not."""

    live = emu.add_workspace(
        team_id=TEAM, name="shop-newer00", env=mark(run="300.1", domain=DOMAIN, started=stamp(3600))
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN),
        extra={"GITHUB_RUN_ID": "299", "GITHUB_RUN_ATTEMPT": "2"},
    )
    assert result.status == "superseded", result.stdout
    (notice,) = [n for n in result.stdout.splitlines() if n.startswith("::notice")]
    assert "later than this release" not in notice, notice
    assert "a later workflow run (300 > 299)" in notice, notice


# -- prune: a hand-made workspace that carries a copy of a release's mark -----------------


def test_prune_keeps_a_hand_made_copy_of_a_releases_env(emu: Emulator, runner: Runner) -> None:
    """A team member made a workspace by hand to reproduce a bug and copied the
    live release's environment variables into it, CODESPHERE_RELEASE included.
    Two workspaces now carry one mark, whose ``id`` is one per run of the action:
    at most one of them is the action's. Prune must not delete the copy, and the
    copy must not push the real way back (run 290) out of keep: 1 either."""
    env = mark(run="300.1", started=stamp(DAY), domain=DOMAIN)
    env["CODESPHERE_RELEASE"] += " id=9f86d081"
    live = emu.add_workspace(team_id=TEAM, name="shop-live", env=env)
    copy = emu.add_workspace(team_id=TEAM, name="debug-checkout-bug", env=dict(env))
    previous = emu.add_workspace(
        team_id=TEAM,
        name="shop-prev",
        env=mark(run="290.1", started=stamp(2 * DAY), domain=DOMAIN),
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu))
    assert result.status == "success", result.stdout
    assert not emu.workspace(previous).deleted, row(result, previous, "deleted")
    assert deleted(emu) == set()
    result = runner.run(prune_inputs(emu, keep="0"))
    assert result.status == "success", result.stdout
    assert emu.workspace(previous).deleted  # keep: 0, an earlier release
    assert not emu.workspace(copy).deleted, row(result, copy, "deleted")
