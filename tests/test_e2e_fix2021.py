"""End to end: the fixes of the review of issues 20 and 21 beyond its own tests
(``test_e2e_review2021.py``): the other side of each rule, and the cases the
review named for other flows.
"""

from __future__ import annotations

import signal
import time

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.github import FakeGitHub
from emulator.runner import SHA, Runner, mark, stamp

from .test_e2e_guardrails import assert_planned, until
from .test_e2e_health import HEALTH, resolve, served
from .test_e2e_preview import preview_inputs, teardown_inputs
from .test_e2e_prune import DAY, GH_TOKEN, deleted, prune_inputs, row
from .test_e2e_rollback import start_run_stages
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs

MARK_PUT = r"^/workspaces/\d+/env-vars$"


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


# -- the mark says released right after the switch -----------------------------------------


def released_mark(emu: Emulator, workspace_id: int) -> str:
    return emu.workspace(workspace_id).env["CODESPHERE_RELEASE"]


def test_the_mark_says_released_right_after_the_switch_and_names_the_way_back(
    emu: Emulator, runner: Runner
) -> None:
    """The mark's update comes right after the switch's write, before the domain
    check: a cancel or a failure later leaves a mark that says what serves."""
    old, _api = served(emu)
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **HEALTH, **{"health-check-domain": "true"}),
        extra=resolve(emu),
    )
    assert result.status == "success", result.stdout
    (new,) = created(emu)
    switch = emu.find_requests("PUT", r"/domains/.*/workspace-connections")[0]
    (update,) = emu.find_requests("PUT", MARK_PUT)
    domain_checks = [r.time for r in emu.app_requests if r.listener == "domain-proxy"]
    assert switch.time < update.time < min(domain_checks)
    assert f" previous={old} domain={DOMAIN} path=/ state=released " in released_mark(emu, new)


def test_a_mark_update_answered_5xx_after_the_switch_costs_seconds_not_a_minute(
    emu: Emulator, runner: Runner
) -> None:
    old = emu.add_workspace(team_id=TEAM, name="shop-old", env=mark(domain=DOMAIN))
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    emu.add_fault("status", method="PUT", path=MARK_PUT, status=503, times=None)
    started = time.monotonic()
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.status == "success", result.stdout
    assert "could not mark workspace" in result.stdout
    assert time.monotonic() - started < 20  # MARK_SECONDS (5 s), not the 60 s retry budget


def test_a_cancel_right_after_the_switch_still_marks_the_release_released(
    emu: Emulator, runner: Runner
) -> None:
    """The runner cancels while the mark's update is in flight (held): the
    cleanup, within the cancel budget, writes it again; the new workspace serves
    and is kept, and its mark says so."""
    old = emu.add_workspace(team_id=TEAM, name="shop-old", env=mark(domain=DOMAIN))
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    held = emu.add_fault("hold", method="PUT", path=MARK_PUT, times=1)
    proc = runner.start(zd_inputs(emu, domain=DOMAIN))
    try:
        until(lambda: held.hits >= 1, "the mark's update after the switch")
        result, took = runner.cancel(proc, signal.SIGINT)
    finally:
        held.release()
    assert result.status == "cancelled", result.stdout
    assert took < 7.5
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}
    assert not emu.workspace(new).deleted
    assert " state=released " in released_mark(emu, new)


def test_a_switch_back_sets_the_mark_back_to_building(emu: Emulator, runner: Runner) -> None:
    """The domain check fails, the switch is undone: the new workspace (kept,
    cleanup-on-failure: false) is no release, so its mark says building again and
    prune may take it for the leftover it is."""
    old, api = served(emu, domain_statuses=[502])
    inputs = zd_inputs(
        emu,
        domain=DOMAIN,
        **{**HEALTH, "health-check-timeout": "2s"},
        **{"health-check-domain": "true", "cleanup-on-failure": "false"},
    )
    result = runner.run(inputs, extra=resolve(emu))
    assert result.status == "failed", result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert len(emu.find_requests("PUT", MARK_PUT)) == 2  # released, then building again
    value = released_mark(emu, new)
    assert " state=building " in value and "previous=" not in value


# -- prune: the way back whose own mark says building --------------------------------------


def test_without_github_prune_knows_the_way_back_from_the_next_releases_mark(
    emu: Emulator, runner: Runner
) -> None:
    """Run 290's mark still says building (its update failed), started 30 days
    ago (past max-age); run 300's mark names it as the workspace it replaced.
    Without github-token, prune ranks it as the release it is (the way back)."""
    way_back = emu.add_workspace(
        team_id=TEAM,
        name="shop-290",
        env=mark(run="290.1", state="building", domain=DOMAIN, started=stamp(30 * DAY)),
    )
    live = emu.add_workspace(
        team_id=TEAM,
        name="shop-300",
        env=mark(run="300.1", domain=DOMAIN, started=stamp(DAY), previous=(way_back,)),
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu))
    assert result.status == "success", result.stdout
    assert deleted(emu) == set()
    assert "kept to roll back to (keep: 1)" in row(result, way_back, "kept")


def test_prune_never_takes_a_successful_runs_workspace_for_a_leftover(
    emu: Emulator, runner: Runner
) -> None:
    """A mark that says building of a run GitHub says succeeded: not a leftover
    (a successful run leaves none); kept, and the summary says why."""
    odd = emu.add_workspace(
        team_id=TEAM,
        name="shop-odd",
        env=mark(run="295.1", state="building", domain=DOMAIN, started=stamp(DAY)),
    )
    failed = emu.add_workspace(
        team_id=TEAM,
        name="shop-failed",
        env=mark(run="296.1", state="building", domain=DOMAIN, started=stamp(DAY)),
    )
    emu.add_domain(TEAM, DOMAIN, {})
    with FakeGitHub(token=GH_TOKEN) as github:
        github.set_run(295, status="completed", conclusion="success")
        github.set_run(296, status="completed", conclusion="failure")
        emu.clear_requests()
        result = runner.run(
            prune_inputs(emu, **{"github-token": GH_TOKEN}), extra={"GITHUB_API_URL": github.url}
        )
    assert result.status == "success", result.stdout
    assert deleted(emu) == {failed}
    assert "its run 295.1 succeeded" in row(result, odd, "kept")


def test_a_promote_marks_the_promoted_release_released_and_names_the_way_back(
    emu: Emulator, runner: Runner
) -> None:
    """A release staged (switch: false) whose mark could not say released is
    promoted: right after the switch its mark says released and names what it
    replaced, as a release's own does; the rest of the mark stays as it was."""
    old = emu.add_workspace(team_id=TEAM, name="shop-old", env=mark(run="280.1", domain=DOMAIN))
    staged_mark = mark(run="290.1", state="building", domain=DOMAIN, started=stamp(600))
    staged = emu.add_workspace(team_id=TEAM, name="shop-staged", env=staged_mark)
    start_run_stages(emu, old, staged)
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    result = runner.run(
        zd_inputs(emu, flow="promote", domain=DOMAIN, **{"workspace-id": str(staged)})
    )
    assert result.status == "success", result.stdout
    expected = staged_mark["CODESPHERE_RELEASE"].replace(
        f" domain={DOMAIN}", f" previous={old} domain={DOMAIN}"
    )
    assert released_mark(emu, staged) == expected.replace("state=building", "state=released")


# -- a copy of a release's env is no release ------------------------------------------------


def with_id(env: dict[str, str], nonce: str) -> dict[str, str]:
    """``env`` (a mark) with the mark's per-run ``id``."""
    return {"CODESPHERE_RELEASE": f"{env['CODESPHERE_RELEASE']} id={nonce}"}


def test_prune_keeps_a_copy_codesphere_made_of_a_release(emu: Emulator, runner: Runner) -> None:
    """A workspace made as a copy of an earlier release (sourceWorkspaceId, its env
    and mark copied along) is no release, even once the original is gone."""
    env = with_id(mark(run="290.1", started=stamp(2 * DAY), domain=DOMAIN), "5eed0001")
    live = emu.add_workspace(
        team_id=TEAM, name="shop-live", env=mark(run="300.1", started=stamp(DAY), domain=DOMAIN)
    )
    copy = emu.add_workspace(team_id=TEAM, name="shop-prev-copy", env=env, source_workspace_id=9)
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    emu.clear_requests()
    result = runner.run(prune_inputs(emu, keep="0"))
    assert result.status == "success", result.stdout
    assert deleted(emu) == set()
    assert "made as a copy of workspace 9" in row(result, copy, "kept")


def copied_setup(emu: Emulator, *, by_codesphere: bool) -> tuple[int, int]:
    """The release ``shop-real`` (serving nothing now) and a copy of it, by hand or
    by Codesphere, that a person pointed the domain at."""
    env = with_id(mark(run="290.1", started=stamp(DAY), domain=DOMAIN), "5eed0002")
    real = emu.add_workspace(team_id=TEAM, name="shop-real", env=env)
    copy = emu.add_workspace(
        team_id=TEAM,
        name="debug-copy",
        env=dict(env),
        source_workspace_id=real if by_codesphere else None,
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [copy]})
    emu.clear_requests()
    return real, copy


@pytest.mark.parametrize("by_codesphere", [False, True])
def test_delete_previous_never_deletes_a_copy_of_a_release(
    emu: Emulator, runner: Runner, by_codesphere: bool
) -> None:
    real, copy = copied_setup(emu, by_codesphere=by_codesphere)
    inputs = zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"})
    later = {"GITHUB_RUN_ID": "300"}
    plan = assert_planned(runner.run({**inputs, "dry-run": "true"}, extra=later), emu)
    kept = [line for line in plan.splitlines() if f"{copy} (debug-copy)" in line]
    assert kept and all(line.startswith("Keep") for line in kept), plan
    result = runner.run(inputs, extra=later)
    assert result.status == "success", result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}
    assert not emu.workspace(copy).deleted and not emu.workspace(real).deleted
    why = "made as a copy of workspace" if by_codesphere else "carried by workspaces"
    assert why in "".join(notices(result.stdout)), result.stdout


def test_teardown_never_deletes_a_copy_of_the_preview(emu: Emulator, runner: Runner) -> None:
    """A preview and a hand-made copy of its env under its next name (one mark id,
    two names): which is the preview cannot be told, so both stay, with a notice;
    a copy Codesphere made is left alone too, and the real preview goes."""
    env = with_id(mark(flow="preview", pr=PR, state="released"), "5eed0003")
    preview = emu.add_workspace(team_id=TEAM, name=PREVIEW, env=env)
    copy = emu.add_workspace(team_id=TEAM, name=f"{PREVIEW}-2", env=dict(env))
    result = runner.run(teardown_inputs(emu), extra=pr_event(runner, action="closed"))
    assert result.status == "success", result.stdout
    assert not emu.find_requests("DELETE")
    assert "carried by workspaces" in "".join(notices(result.stdout)), result.stdout
    emu.workspace(copy).source_workspace_id = preview
    emu.workspace(copy).env["CODESPHERE_RELEASE"] += "0"  # ids differ now: made as a copy
    result = runner.run(teardown_inputs(emu), extra=pr_event(runner, action="closed"))
    assert result.status == "success", result.stdout
    assert emu.workspace(preview).deleted and not emu.workspace(copy).deleted
    assert "made as a copy of workspace" in "".join(notices(result.stdout)), result.stdout


# -- health check: an app's JSON answer that mentions a phrase ---------------------------


def test_an_app_answering_json_that_mentions_the_phrase_passes(
    emu: Emulator, runner: Runner
) -> None:
    """As application/json this time (the review's test serves it as text/plain)."""
    body = '{"status":"ok","note":"Workspace server is starting is what the LB says"}'
    served(emu, body=body, content_type="application/json")
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.status == "success", result.stdout


# -- dry run: the vault ---------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["first-push", "later-push"])
def test_a_preview_dry_run_with_the_vault_plans_the_vault(
    emu: Emulator, runner: Runner, existing: bool
) -> None:
    """Created or updated, the preview's env is env alone; secret-env goes into
    its vault before any stage, and the plan says so (counted, never named)."""
    emu.set_branch_head(BRANCH, HEAD)
    ws = None
    if existing:
        ws = emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    inputs = preview_inputs(
        emu,
        env="MODE=preview",
        **{"secret-env": "API_KEY=never-shown-7d2", "secret-store": "vault", "dry-run": "true"},
    )
    plan = assert_planned(runner.run(inputs, extra=pr_event(runner)), emu)
    where = "the new workspace" if ws is None else f"workspace {ws} ({PREVIEW})"
    assert f"Store 1 secret of secret-env in the vault of {where} once it runs" in plan, plan
    assert "from secret-env" not in plan and "API_KEY" not in plan, plan
    assert "env MODE" in plan or "its env (MODE)" in plan, plan


# -- health check: a restricted dev domain that refuses the token ---------------------------


@pytest.mark.parametrize("accepted", [True, False], ids=["token-taken", "token-refused"])
def test_a_restricted_dev_domain_that_sends_to_sign_in_is_not_the_app(
    emu: Emulator, runner: Runner, accepted: bool
) -> None:
    """Codesphere redirects a visitor of a restricted domain it does not let in to
    its sign-in page. With the default health-check-status (200-399) that 302
    would pass the check though the app was never reached: when the dev domain
    does not take the token, the release must fail before the switch, saying so."""
    old, api = served(emu, app_restricted=True, restricted_answer="redirect")
    emu.serve_apps(token_accepted=accepted)
    inputs = zd_inputs(emu, domain=DOMAIN, **{**HEALTH, "health-check-timeout": "2s"})
    result = runner.run(inputs, extra=resolve(emu))
    (new,) = created(emu)
    if accepted:
        assert result.status == "success", result.stdout
        return
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "refused the API token" in error and "sign-in page" in error, error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    result.assert_no_token()
