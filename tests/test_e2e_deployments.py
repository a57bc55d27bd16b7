"""End to end: the GitHub Deployments option against a local fake of GitHub's API."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from .e2e import SHA, Runner
from .emulator import Emulator
from .fake_github import FakeGitHub
from .pr_events import BRANCH, HEAD, PR, PREVIEW, pr_event
from .test_e2e_preview import preview_inputs, teardown_inputs
from .test_e2e_rollback import live_setup, rollback_inputs
from .test_e2e_zero_downtime import DOMAIN, TEAM

GH_TOKEN = "ghs_fakeGitHubToken0123456789"
DEPLOYMENTS = "/repos/acme/shop/deployments"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=GH_TOKEN) as fake:
        yield fake


def with_github(github: FakeGitHub, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**(extra or {}), "GITHUB_API_URL": github.url, "GITHUB_RUN_ID": "77"}


def assert_no_tokens(result: object) -> None:
    result.assert_no_token()  # type: ignore[attr-defined]
    result.assert_no_token(GH_TOKEN)  # type: ignore[attr-defined]


def test_a_preview_creates_a_deployment_and_its_statuses(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    result = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.returncode == 0, result.stdout
    (deployment,) = github.deployments.values()
    assert github.summaries() == [
        f"POST {DEPLOYMENTS}",
        f"POST {DEPLOYMENTS}/{deployment.id}/statuses",
        f"POST {DEPLOYMENTS}/{deployment.id}/statuses",
    ]
    assert all(r.headers["authorization"] == f"Bearer {GH_TOKEN}" for r in github.requests)
    assert deployment.body == {
        "ref": HEAD,  # the pull request's head, not the merge commit in GITHUB_SHA
        "environment": f"preview-pr-{PR}",
        "auto_merge": False,
        "required_contexts": [],
        "description": "Codesphere preview flow",
        "transient_environment": True,
        "production_environment": False,
    }
    in_progress, success = deployment.statuses
    assert in_progress["state"] == "in_progress"
    assert in_progress["log_url"] == "https://github.com/acme/shop/actions/runs/77"
    assert success["state"] == "success"
    assert success["environment_url"] == result.outputs["workspace-url"]
    assert "::warning" not in result.stdout
    assert f"::add-mask::{GH_TOKEN}" in result.stdout
    assert_no_tokens(result)


def test_a_failed_release_marks_the_deployment_failed(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0}})
    result = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.status == "failed"
    result.assert_one_error()
    (deployment,) = github.deployments.values()
    assert deployment.states == ["in_progress", "failure"]
    assert "environment_url" not in deployment.statuses[-1]
    assert_no_tokens(result)


@pytest.mark.parametrize("status", [500, 403, 0])
def test_a_broken_deployments_api_never_fails_the_release(
    emu: Emulator, runner: Runner, github: FakeGitHub, status: int
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    github.fail("POST", "/deployments$", status)
    result = runner.run(
        preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert not result.errors
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1
    assert (
        "GitHub Deployments: creating a deployment for environment preview-pr-5 failed"
        in (warnings[0])
    )
    if status == 403:
        assert "deployments: write" in warnings[0]
    assert github.summaries() == [f"POST {DEPLOYMENTS}"]  # no statuses without a deployment
    assert_no_tokens(result)


def test_a_wrong_token_is_a_warning(emu: Emulator, runner: Runner, github: FakeGitHub) -> None:
    result = runner.run(
        preview_inputs(emu, prepare="false", **{"github-token": "ghs_wrong-token"}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.returncode == 0, result.stdout
    assert "answered 401 (Bad credentials): check the github-token input" in result.stdout
    assert "ghs_wrong-token" not in result.stdout.replace("::add-mask::ghs_wrong-token", "")
    result.assert_no_token()


def test_teardown_marks_the_environments_deployments_inactive(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.add_workspace(team_id=TEAM, name=PREVIEW)
    mine = [github.add_deployment(f"preview-pr-{PR}") for _ in range(2)]
    other = github.add_deployment("preview-pr-6")
    result = runner.run(
        teardown_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner, action="closed")),
    )
    assert result.returncode == 0, result.stdout
    listing = github.requests[0]
    assert listing.summary == f"GET {DEPLOYMENTS}"
    assert listing.query["environment"] == f"preview-pr-{PR}"
    assert all(github.deployments[i].states == ["inactive"] for i in mine)
    assert github.deployments[other].states == []
    assert not [r for r in github.requests if r.summary == f"POST {DEPLOYMENTS}"]
    assert_no_tokens(result)


def test_a_rollback_deploys_the_production_environment(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    blue, _green, _api = live_setup(emu)
    result = runner.run(
        rollback_inputs(emu, blue, **{"github-token": GH_TOKEN}), extra=with_github(github)
    )
    assert result.returncode == 0, result.stdout
    (deployment,) = github.deployments.values()
    assert deployment.ref == SHA
    assert deployment.environment == "production"
    assert "transient_environment" not in deployment.body
    assert deployment.states == ["in_progress", "success"]
    assert deployment.statuses[-1]["environment_url"] == f"https://{DOMAIN}/"
    assert_no_tokens(result)


def test_without_a_github_token_github_is_never_called(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    result = runner.run(
        preview_inputs(emu, prepare="false"), extra=with_github(github, pr_event(runner))
    )
    assert result.returncode == 0, result.stdout
    assert github.requests == []
    result.assert_no_token()


def test_an_http_github_api_url_off_loopback_is_refused_before_any_request(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    extra = with_github(github, pr_event(runner))
    extra["GITHUB_API_URL"] = "http://api.github.example.com"
    result = runner.run(preview_inputs(emu, **{"github-token": GH_TOKEN}), extra=extra)
    error = result.assert_one_error()
    assert "GITHUB_API_URL is 'http://api.github.example.com'" in error
    assert emu.requests == [] and github.requests == []
    assert_no_tokens(result)


def test_a_cancelled_first_preview_is_deleted_and_its_deployment_failed(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    proc = runner.start(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    deadline = time.monotonic() + 20
    while not emu.events_of("stage_started", stage="prepare"):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("prepare never started")
        time.sleep(0.05)
    (workspace,) = emu.workspaces(TEAM, name=PREVIEW)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert took < 3.0, f"took {took:.2f} s to stop"
    assert result.status == "cancelled"
    error = result.assert_one_error()
    assert emu.workspace(workspace.id).deleted
    assert f"The new workspace {workspace.id} was deleted" in error
    (deployment,) = github.deployments.values()
    assert deployment.states == ["in_progress", "failure"]
    assert deployment.statuses[-1]["description"] == "Preview cancelled"
    assert_no_tokens(result)
