"""End to end: the other sides of the fixes of issue 22's review (the review's
own tests are in test_e2e_review22.py): a cancel while a release is on trial,
from its switch until its bake passed, in zero-downtime with a bake and in a
canary without one; zero-downtime without a bake keeps its switch; a re-run
of a canary that serves beside."""

from __future__ import annotations

import signal

import pytest
import requests

from emulator import Emulator
from emulator.runner import TOKEN, Runner, start_app

from .test_e2e_canary import (
    CONNECTIONS,
    DOMAIN_READ,
    bake_started,
    canary_inputs,
    finish,
    joined,
    live,
    maps,
    resolve,
    wait_for,
)
from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, created, zd_inputs


def baking(emu: Emulator, **more: str) -> dict[str, str]:
    """zero-downtime with a bake of a minute."""
    inputs = {"health-check-path": "/healthz", "bake-time": "60s", **more}
    return zd_inputs(emu, domain=DOMAIN, **inputs)


def domain_check_began(emu: Emulator) -> bool:
    return any(r.listener == "domain-proxy" for r in emu.app_requests)


def test_zero_downtime_with_a_bake_cancelled_during_its_domain_check_switches_back(
    emu: Emulator, runner: Runner
) -> None:
    # The new route warms up for 3 s: the check through the domain waits.
    old, api = live(emu, {"balancer": "sticky"}, {"domain_placeholder_seconds": 3.0})
    proc = runner.start(baking(emu), extra=resolve(emu))
    wait_for("the domain check", lambda: domain_check_began(emu), proc)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    assert took < 2.0
    (new,) = created(emu)
    assert maps(emu) == [{"/": [new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted and not emu.workspace(old).deleted
    error = result.assert_one_error()
    assert f"The new workspace {new} was deleted" in error
    assert "points where it did before the release" in error
    assert result.outputs["domain-url"] == ""


def test_zero_downtime_with_a_bake_cancelled_during_its_switch_switches_back(
    emu: Emulator, runner: Runner
) -> None:
    """The switch is whole (a cancel is held back until it is), then undone."""
    old, api = live(emu, {"balancer": "round_robin"}, {})
    emu.add_fault("delay", method="PUT", path=CONNECTIONS, seconds=1.0)
    proc = runner.start(baking(emu), extra=resolve(emu))
    wait_for("the switch", lambda: emu.find_requests("PUT", CONNECTIONS), proc)
    result, took = runner.cancel(proc, signal.SIGTERM)
    assert result.status == "cancelled", result.stdout
    assert took < 2.0
    (new,) = created(emu)
    assert maps(emu) == [{"/": [new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted


def test_zero_downtime_without_a_bake_keeps_a_switch_cancelled_during_its_domain_check(
    emu: Emulator, runner: Runner
) -> None:
    """Without a bake nothing is on trial: the switch stands, and the error says
    how to go back (as before issue 22)."""
    old, api = live(emu, {"balancer": "sticky"}, {"domain_placeholder_seconds": 3.0})
    inputs = zd_inputs(emu, domain=DOMAIN, **{"health-check-path": "/healthz"})
    proc = runner.start(inputs, extra=resolve(emu))
    wait_for("the domain check", lambda: domain_check_began(emu), proc)
    result, _took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert f"flow: rollback with workspace-id {old}" in result.assert_one_error()


def test_a_canary_without_a_bake_cancelled_during_its_domain_check_is_taken_out(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "sticky"}, {"domain_placeholder_seconds": 3.0})
    proc = runner.start(canary_inputs(emu), extra=resolve(emu))
    new = joined(emu, old, proc)
    wait_for("the domain check", lambda: domain_check_began(emu), proc)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    assert took < 2.0
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    assert "points where it did before the release" in result.assert_one_error()
    assert "#### Bake" not in result.summary


def test_a_rerun_of_a_serving_canary_says_it_serves_beside_and_leaves_out_the_gone(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    other = emu.add_workspace(team_id=TEAM, name="shop-other")
    start_app(emu, other)
    emu.add_domain(TEAM, DOMAIN, {"/": [old, other], "/api": [api]})  # two serve /
    first = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert first.returncode == 0, first.stdout
    (new,) = created(emu)
    # The other workspace is deleted by hand; the domain still lists it.
    requests.delete(
        f"{emu.url}/workspaces/{other}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ).raise_for_status()
    again = runner.run(canary_inputs(emu), extra={**resolve(emu), "GITHUB_RUN_ATTEMPT": "2"})
    assert again.returncode == 0, again.stdout
    assert created(emu) == [new]
    assert again.outputs["previous-workspace-id"] == str(old)  # the gone one left out
    assert (
        f"Canary: workspace {new} ({NAME}) serves https://{DOMAIN}/ beside workspace {old} "
        "(about 1 in 2 of the users)"
    ) in again.stdout
    assert f"undo it with flow: rollback and workspace-id {old}" in again.summary
    assert "this commit is live, nothing was changed" in again.summary


SECRET = "Zq9sEcReT-0f7d2c41b8e6a935"  # a secret-env value


@pytest.mark.parametrize(
    "pad",
    [
        pytest.param(100, id="across-the-cells-cut"),  # "❌ 503 " + 100: the secret at 106
        pytest.param(485, id="across-the-decisions-cut"),  # about 99 chars before the reason
    ],
)
def test_a_secret_in_an_answer_across_the_timelines_cut_never_shows(
    emu: Emulator, runner: Runner, pad: int
) -> None:
    """An app whose error answers' reason phrase echoes a secret (a setting, a
    header): the timeline's cells (120 characters) and its decision (600) are
    cut; the secret is redacted before, so no part of it is left."""
    old, _api = live(emu, {"balancer": "round_robin"}, {})
    inputs = canary_inputs(emu, **{"bake-time": "30s", "secret-env": f"API_KEY={SECRET}"})
    proc = runner.start(inputs, extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    emu.configure_app(new, dev_statuses=[503], reason=f"Unavailable {'x' * (pad - 12)}{SECRET}")
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    assert "#### Bake" in result.summary and "❌ 503 Unavailable xxx" in result.summary
    log = "\n".join(x for x in result.stdout.splitlines() if not x.startswith("::add-mask::"))
    for shown in (result.summary, log, *result.outputs.values()):
        assert SECRET[:6] not in shown, shown
    assert "***" in result.summary


def test_map_reads_that_fail_during_a_bake_end_it_on_time_and_show(
    emu: Emulator, runner: Runner
) -> None:
    """Every map read of the bake answers 503 (the review's case, which pushed the
    second round of a 6 s bake to 7.4 s and left out the round due at 6 s): each
    is tried once, the last round comes at 0:06, and the timeline shows them."""
    _old, api = live(emu, {"balancer": "round_robin"}, {})
    # Every read after the switch's own answers 503.
    emu.add_fault("status", method="GET", path=DOMAIN_READ, skip=1, times=None)
    result = runner.run(baking(emu, **{"bake-time": "6s"}), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    reads = emu.find_requests("GET", DOMAIN_READ)[1:]
    assert len(reads) == 3  # rounds at 0, 5 and 6 s; no retries
    assert reads[-1].time - reads[0].time < 6.5
    assert "| 0:06 |" in result.summary, result.summary
    assert "map not read: 503" in result.summary
    assert "**Decision:** passed after 6.0 s: the switch stands" in result.summary
