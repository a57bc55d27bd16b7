"""End to end: inputs by their names (issue 23), as a runner passes them.

The runner passes every input action.yml declares (the step's ``with:`` value,
else its default, else empty) and an undeclared one only when ``with:`` names
it (``emulator/runner.py``). So an input under its old name is the user's own
key, whatever its value.
"""

from __future__ import annotations

import pytest

from codesphere_action.flows.specs import FLOW_NAMES
from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, pr_event
from emulator.github import FakeGitHub
from emulator.runner import SHA, ActionRun, Runner

from .test_e2e_codesphere_today import SECRET
from .test_e2e_preview import preview_inputs, teardown_inputs
from .test_e2e_prune import prune_inputs
from .test_e2e_rollback import rollback_inputs, start_run_stages
from .test_e2e_simple import simple_inputs
from .test_e2e_zero_downtime import DOMAIN, TEAM, live_setup, zd_inputs


@pytest.mark.parametrize("value", ["staging", ""])
def test_the_old_environment_input_fails_before_any_request_naming_the_new_one(
    emu: Emulator, runner: Runner, value: str
) -> None:
    with FakeGitHub(token="ghs_old-name-token-0123") as github:
        inputs = preview_inputs(emu, **{"github-token": "ghs_old-name-token-0123"})
        result = runner.run(
            {**inputs, "environment": value},
            extra={**pr_event(runner), "GITHUB_API_URL": github.url},
        )
        assert github.requests == []
    assert result.returncode == 1
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'environment' is" in error
    assert "renamed to 'deployment-environment'" in error
    assert "`deployment-environment:` instead of `environment:`" in error
    assert emu.requests == []


def test_deployment_environment_names_the_deployments_environment(
    emu: Emulator, runner: Runner
) -> None:
    with FakeGitHub(token="ghs_new-name-token-0123") as github:
        inputs = preview_inputs(
            emu,
            prepare="false",
            **{"github-token": "ghs_new-name-token-0123", "deployment-environment": "review"},
        )
        result = runner.run(inputs, extra={**pr_event(runner), "GITHUB_API_URL": github.url})
        assert result.status == "success", result.stdout
        (deployment,) = github.deployments.values()
    assert deployment.body["environment"] == "review"  # not the default preview-pr-<number>
    assert deployment.body["payload"]["codesphere-release"]["pr"] == PR


# -- inputs the chosen flow ignores ---------------------------------------------------------
def ignored_warnings(result: ActionRun) -> list[str]:
    return [
        line
        for line in result.stdout.splitlines()
        if line.startswith("::warning title=Inputs ignored::")
    ]


def test_inputs_the_simple_flow_ignores_are_one_warning_naming_them_never_their_values(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    given = {
        "domain": DOMAIN,
        "team-id": str(TEAM),
        "plan-id": "8",
        "secret-env": f"DB_PASSWORD={SECRET}",
        "env": "NODE_ENV=production",
        "domain-path": "/",  # its default: nothing to say
    }
    result = runner.run(simple_inputs(emu, ws, **given))
    assert result.status == "success", result.stdout
    (warning,) = ignored_warnings(result)
    assert warning == (
        "::warning title=Inputs ignored::The simple flow ignores these inputs, which only other "
        "flows read: team-id (zero-downtime, canary, preview, teardown, promote, rollback, "
        "prune); plan-id, env, secret-env (zero-downtime, canary, preview); domain "
        "(zero-downtime, canary, promote, rollback). Remove them from the step's with:, or "
        "choose a flow that reads them"
    )
    assert len([line for line in result.stdout.splitlines() if line.startswith("::warning")]) == 1
    assert SECRET not in result.stdout.replace(f"::add-mask::{SECRET}", "")
    assert "production" not in warning
    assert not emu.find_requests("GET", r"^/domains")  # dropped indeed
    result.assert_no_token()


def test_a_bad_value_of_an_ignored_input_is_still_an_input_error(
    emu: Emulator, runner: Runner
) -> None:
    """Every input is validated, read or not: a typo fails before any request
    rather than hiding behind the warning."""
    ws = emu.add_workspace()
    emu.clear_requests()
    result = runner.run(simple_inputs(emu, ws, **{"storage-mib": "20 GiB"}))
    assert result.status == "failed"
    assert "input 'storage-mib' is '20 GiB'" in result.assert_one_error()
    assert emu.requests == []


def plain(emu: Emulator, runner: Runner, flow: str) -> ActionRun:
    """A run of ``flow`` with only the inputs it needs; the runner adds every other
    input with its default, as GitHub's does."""
    emu.set_branch_head("main", SHA)  # the commit the run releases: no warning about it
    if flow == "simple":
        return runner.run(simple_inputs(emu, emu.add_workspace(team_id=TEAM)))
    if flow == "zero-downtime":
        live_setup(emu)
        return runner.run(zd_inputs(emu, domain=DOMAIN))
    if flow in ("preview", "teardown"):
        emu.set_branch_head(BRANCH, HEAD)
        if flow == "preview":
            return runner.run(preview_inputs(emu), extra=pr_event(runner))
        return runner.run(teardown_inputs(emu), extra=pr_event(runner, action="closed"))
    if flow in ("promote", "rollback"):
        live_setup(emu)
        target = emu.add_workspace(team_id=TEAM, name="shop-new")
        start_run_stages(emu, target)
        return runner.run(rollback_inputs(emu, target, flow=flow))
    return runner.run(prune_inputs(emu))


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_a_plain_run_with_the_runners_defaults_warns_nothing(
    emu: Emulator, runner: Runner, flow: str
) -> None:
    assert runner.defaults  # every declared input arrives, most with their default
    result = plain(emu, runner, flow)
    assert result.status == "success", result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert warnings == []
