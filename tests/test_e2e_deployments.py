"""End to end: the GitHub Deployments option against a local fake of GitHub's API."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.github import FakeGitHub
from emulator.runner import SHA, Runner

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
    assert github.summaries(DEPLOYMENTS) == [
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
        # what teardown knows its pull request's deployments by
        "payload": {"codesphere-release": {"flow": "preview", "workspace": PREVIEW, "pr": PR}},
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
    assert github.summaries(DEPLOYMENTS) == [
        f"POST {DEPLOYMENTS}"
    ]  # no statuses without a deployment
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
    ours = {"codesphere-release": {"flow": "preview", "workspace": PREVIEW, "pr": PR}}
    mine = [github.add_deployment(f"preview-pr-{PR}", payload=ours) for _ in range(2)]
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


# -- the pull request's preview comment ---------------------------------------------------

COMMENTS = f"/repos/acme/shop/issues/{PR}/comments"


def test_one_preview_comment_is_kept_up_to_date_and_teardown_edits_it(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    other = github.add_comment(PR, "LGTM")  # someone else's comment is left alone
    first = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert first.returncode == 0, first.stdout
    (comment,) = [c for c in github.comments.values() if c["id"] != other]
    body = comment["body"]
    assert body.startswith(
        f"<!-- codesphere-release:preview workspace={PREVIEW} -->\n### ✅ Preview ready"
    )
    assert f"| **URL** | {first.outputs['workspace-url']} |" in body
    assert f"[`{HEAD[:7]}`](https://github.com/acme/shop/commit/{HEAD})" in body
    assert "[the run's log](https://github.com/acme/shop/actions/runs/77)" in body

    pushed = "d" * 40
    emu.set_branch_head(BRANCH, pushed)
    second = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner, sha=pushed, action="synchronize")),
    )
    assert second.returncode == 0, second.stdout
    assert len(github.comments) == 2  # still one preview comment
    assert f"`{pushed[:7]}`" in github.comments[comment["id"]]["body"]
    assert github.summaries(COMMENTS)[-1] == f"GET {COMMENTS}"
    assert github.summaries("/issues/comments/") == [
        f"PATCH /repos/acme/shop/issues/comments/{comment['id']}"
    ]

    closed = runner.run(
        teardown_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner, action="closed")),
    )
    assert closed.returncode == 0, closed.stdout
    gone = github.comments[comment["id"]]["body"]
    assert "### 🗑️ Preview deleted" in gone and first.outputs["workspace-url"] not in gone
    assert github.comments[other]["body"] == "LGTM"
    assert_no_tokens(closed)


def test_a_failed_preview_says_so_in_the_comment(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0, "error_lines": ["boom"]}})
    result = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.status == "failed"
    (comment,) = github.comments.values()
    assert "### ❌ Preview update failed" in comment["body"]
    assert (
        "| **Why** | Stage prepare failed at step 1 of 2 on codesphere-ide: boom" in comment["body"]
    )


def test_a_comment_without_permission_is_a_warning(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    github.fail("GET", r"/issues/\d+/comments", 403)
    result = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.returncode == 0, result.stdout
    assert "::warning title=Pull request comment::" in result.stdout
    assert "pull-requests: write" in result.stdout
    assert_no_tokens(result)


@pytest.mark.parametrize("flow", ["preview", "teardown"])
def test_a_pull_request_from_a_fork_without_secrets_is_skipped(
    emu: Emulator, runner: Runner, flow: str
) -> None:
    inputs = preview_inputs(emu) if flow == "preview" else teardown_inputs(emu)
    inputs["api-token"] = ""  # GitHub gives runs of pull requests from forks no secrets
    result = runner.run(inputs, extra=pr_event(runner, head_repository="someone/shop"))
    assert result.returncode == 0, result.stdout
    assert result.status == "skipped"
    assert "::notice title=Skipped::" in result.stdout
    assert "comes from the fork someone/shop" in result.stdout
    assert "::error" not in result.stdout
    assert emu.requests == []
    assert "⏭️" in result.summary


def test_an_empty_token_on_the_repositorys_own_pull_request_is_still_an_error(
    emu: Emulator, runner: Runner
) -> None:
    inputs = preview_inputs(emu)
    inputs["api-token"] = ""
    result = runner.run(inputs, extra=pr_event(runner))
    assert result.status == "failed"
    assert "input 'api-token' is empty" in result.assert_one_error()


def test_the_comment_never_shows_a_secret_the_build_printed(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    secret = "s3cr3t-database-password"
    emu.defaults_for_new_workspaces(
        stages={"prepare": {"fail_step": 0, "error_lines": [f"cannot connect with {secret}"]}}
    )
    result = runner.run(
        preview_inputs(emu, **{"github-token": GH_TOKEN, "secret-env": f"DB_PASSWORD={secret}"}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.status == "failed"
    (comment,) = github.comments.values()
    assert "cannot connect with ***" in comment["body"]
    assert secret not in comment["body"]


def test_after_a_cancel_the_outputs_come_before_a_slow_github(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    proc = runner.start(
        preview_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    deadline = time.monotonic() + 20
    while not emu.find_requests("POST", r"/workspaces/\d+/pipeline/prepare/start"):
        assert time.monotonic() < deadline, "prepare never started"
        time.sleep(0.05)
    github.delay = 1.5  # every GitHub answer from now on takes 1.5 s
    for _ in range(120):  # a pull request with more than 100 comments
        github.add_comment(PR, "a comment")
    result, took = runner.cancel(proc, signal.SIGINT, timeout=15)
    assert took < 7.5, f"took {took:.2f} s"  # before the runner's SIGTERM
    assert result.status == "cancelled"
    assert result.summary  # written before the GitHub calls
    assert_no_tokens(result)
