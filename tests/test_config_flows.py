"""Config for the preview, teardown, rollback and canary flows, bake-time and the
Deployments option."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from codesphere_action.config import load_config
from codesphere_action.errors import ConfigError, ContextError, Skipped
from codesphere_action.github_context import PullRequest, fork_source
from codesphere_action.inputs import (
    DEFAULT_GITHUB_API_URL,
    default_app_name,
    default_workspace_name,
    preview_workspace_name,
)

TOKEN = "cs-token-7f3a9c"
GH_TOKEN = "ghs_config-test-token"
HEAD = "a" * 40


def event_file(tmp_path: Path, payload: Any) -> str:
    path = tmp_path / "event.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


def pr_payload(number: Any = 5, ref: Any = "feature/x", sha: Any = HEAD) -> dict[str, Any]:
    return {
        "pull_request": {
            "number": number,
            "head": {"ref": ref, "sha": sha, "repo": {"full_name": "acme/shop"}},
        }
    }


def flow_env(tmp_path: Path, flow: str, payload: Any = None, **inputs: str) -> dict[str, str]:
    environ = {
        "INPUT_API-TOKEN": TOKEN,
        "INPUT_FLOW": flow,
        "INPUT_TEAM-ID": "7",
        "INPUT_PLAN-ID": "8",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SHA": "c" * 40,
        "GITHUB_REF_NAME": "5/merge",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "99",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": event_file(tmp_path, pr_payload() if payload is None else payload),
    }
    for name, value in inputs.items():
        environ["INPUT_" + name.upper().replace("_", "-")] = value
    return environ


def test_preview_takes_name_branch_and_commit_from_the_pull_request(tmp_path: Path) -> None:
    config = load_config(flow_env(tmp_path, "preview"))
    assert config.pull_request == PullRequest(5, "feature/x", HEAD, "acme/shop")
    assert config.workspace_name == "shop-pr-5"
    assert config.branch == "feature/x"  # not GITHUB_REF_NAME, the merge ref
    assert config.deployment_ref == HEAD  # not GITHUB_SHA, the merge commit
    assert config.git_url == "https://github.com/acme/shop.git"
    assert config.github.environment == "preview-pr-5"
    assert config.github.token == ""
    assert config.run.url == "https://github.com/acme/shop/actions/runs/99"


def test_pull_request_target_is_a_pull_request_too(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "preview")
    environ["GITHUB_EVENT_NAME"] = "pull_request_target"
    assert load_config(environ).workspace_name == "shop-pr-5"


def test_explicit_name_and_branch_win(tmp_path: Path) -> None:
    config = load_config(flow_env(tmp_path, "preview", workspace_name="my-preview", branch="other"))
    assert (config.workspace_name, config.branch) == ("my-preview", "other")


def test_a_long_repository_name_is_shortened_to_fit() -> None:
    name = preview_workspace_name("acme/" + "r" * 100, 12345)
    assert len(name) == 63 and name.endswith("-pr-12345")


def test_the_app_is_workspace_name_else_the_default_names_repository_part(tmp_path: Path) -> None:
    assert load_config(flow_env(tmp_path, "preview")).app == "shop"
    named = load_config(flow_env(tmp_path, "preview", workspace_name="my-preview"))
    assert named.app == "my-preview"
    long = "acme/." + "r" * 100
    app = default_app_name(long)
    assert default_workspace_name(long, "a" * 40) == f"{app}-aaaaaaa" and app == "r" * 55


@pytest.mark.parametrize("flow", ["preview", "teardown"])
def test_a_push_is_not_a_pull_request(tmp_path: Path, flow: str) -> None:
    environ = flow_env(tmp_path, flow)
    environ["GITHUB_EVENT_NAME"] = "push"
    with pytest.raises(ContextError, match=f"the {flow} flow works on a pull request"):
        load_config(environ)


def test_teardown_by_name_needs_no_pull_request(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "teardown", workspace_name="shop-pr-3")
    environ["GITHUB_EVENT_NAME"] = "schedule"
    config = load_config(environ)
    assert (config.workspace_name, config.pull_request, config.github.environment) == (
        "shop-pr-3",
        None,
        "",
    )


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("{not json", "could not read"),
        ({"action": "opened"}, "has no pull_request.head"),
        (pr_payload(number="5"), "pull_request.number '5'"),
        (pr_payload(number=True), "pull_request.number True"),
        (pr_payload(ref=""), "pull_request.head.ref ''"),
        (pr_payload(ref="bad..ref"), "head branch 'bad..ref' is not a branch name"),
        (pr_payload(sha="abc"), "pull_request.head.sha 'abc'"),
    ],
)
def test_bad_event_payloads_are_named(tmp_path: Path, payload: Any, says: str) -> None:
    with pytest.raises(ContextError) as caught:
        load_config(flow_env(tmp_path, "preview", payload))
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("head", "base", "repository", "fork"),
    [
        ("acme/shop", "acme/shop", "acme/shop", ""),
        ("ACME/Shop", "acme/shop", "acme/shop", ""),
        ("acme/shop", None, "acme/shop", ""),  # no base in the payload: GITHUB_REPOSITORY
        ("someone/shop", "acme/shop", "acme/shop", "the fork someone/shop"),
        ("acme/shop", "acme/shop", "other/shop", "the fork acme/shop"),
        ("acme/shop", None, "", "the fork acme/shop"),  # nothing to compare with
        (None, "acme/shop", "acme/shop", "a fork that was deleted"),
    ],
)
def test_a_fork_is_told_from_the_payload(
    head: str | None, base: str | None, repository: str, fork: str
) -> None:
    def side(name: str | None) -> dict[str, Any]:
        return {"repo": None if name is None else {"full_name": name}}

    pull = {"head": side(head), "base": side(base)} if base else {"head": side(head)}
    assert fork_source(pull, repository).startswith(fork)
    assert bool(fork_source(pull, repository)) == bool(fork)


@pytest.mark.parametrize(
    ("flow", "action", "state", "skipped"),
    [
        ("preview", "opened", "open", False),
        ("preview", "labeled", "closed", True),  # an event on a closed pull request
        ("preview", None, None, False),
        ("teardown", "closed", "closed", False),
        ("teardown", "edited", "closed", False),
        ("teardown", "synchronize", "open", True),
        ("teardown", None, None, True),  # nothing says it closed: nothing is deleted
    ],
)
def test_the_events_action_and_state_decide(
    tmp_path: Path, flow: str, action: str | None, state: str | None, skipped: bool
) -> None:
    payload = pr_payload()
    if action:
        payload["action"] = action
    if state:
        payload["pull_request"]["state"] = state
    environ = flow_env(tmp_path, flow, payload)
    if not skipped:
        assert load_config(environ).pull_request is not None
        return
    with pytest.raises(Skipped) as caught:
        load_config(environ)
    assert f"the event's action is '{action or 'not given'}'" in str(caught.value)


def test_a_missing_event_file_is_named(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "preview")
    environ["GITHUB_EVENT_PATH"] = str(tmp_path / "nope.json")
    with pytest.raises(ContextError, match=r"nope\.json"):
        load_config(environ)


def test_other_flows_ignore_the_event(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "zero-downtime", "{broken")
    config = load_config(environ)
    assert config.pull_request is None
    assert config.workspace_name == "shop-ccccccc"
    assert config.branch == "5/merge"


@pytest.mark.parametrize(
    ("drop", "name"),
    [
        ("INPUT_TEAM-ID", "team-id"),
        ("INPUT_WORKSPACE-ID", "workspace-id"),
        ("INPUT_DOMAIN", "domain"),
    ],
)
def test_rollback_needs_team_workspace_and_domain(tmp_path: Path, drop: str, name: str) -> None:
    environ = flow_env(tmp_path, "rollback", workspace_id="42", domain="shop.example.com")
    del environ[drop]
    with pytest.raises(ConfigError) as caught:
        load_config(environ)
    assert caught.value.input_name == name


def test_rollback_config(tmp_path: Path) -> None:
    config = load_config(
        flow_env(tmp_path, "rollback", workspace_id="42", domain="shop.example.com")
    )
    assert (config.workspace_id, config.domain_url, config.github.environment) == (
        42,
        "https://shop.example.com/",
        "production",
    )


def test_github_token_is_a_secret_and_turns_deployments_on(tmp_path: Path) -> None:
    config = load_config(flow_env(tmp_path, "preview", github_token=GH_TOKEN))
    assert config.github.token == GH_TOKEN
    assert GH_TOKEN in config.secrets
    assert GH_TOKEN not in repr(config)
    assert config.github.api_url == DEFAULT_GITHUB_API_URL


def test_github_api_url_may_be_http_only_on_loopback(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "preview", github_token=GH_TOKEN)
    environ["GITHUB_API_URL"] = "http://127.0.0.1:8123/"
    assert load_config(environ).github.api_url == "http://127.0.0.1:8123"
    environ["GITHUB_API_URL"] = "http://ghe.example.com/api/v3"
    with pytest.raises(
        ContextError, match=re.escape("GITHUB_API_URL is 'http://ghe.example.com/api/v3'")
    ):
        load_config(environ)
    environ["GITHUB_API_URL"] = "https://user:pw@ghe.example.com/api/v3"
    with pytest.raises(ContextError) as caught:
        load_config(environ)
    assert "pw" not in str(caught.value)


def test_github_token_errors_never_show_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(flow_env(tmp_path, "preview", github_token="ghs_a b"))
    assert caught.value.input_name == "github-token"
    assert "ghs_a" not in str(caught.value)


def test_deployments_need_the_repository(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "rollback", workspace_id="1", domain="a.example.com")
    environ["INPUT_GITHUB-TOKEN"] = GH_TOKEN
    del environ["GITHUB_REPOSITORY"]
    with pytest.raises(ContextError, match="GITHUB_REPOSITORY"):
        load_config(environ)


def test_deployment_environment_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(flow_env(tmp_path, "preview", deployment_environment="x" * 256))
    assert caught.value.input_name == "deployment-environment"
    config = load_config(flow_env(tmp_path, "preview", deployment_environment="review"))
    assert config.github.environment == "review"


@pytest.mark.parametrize("value", ["staging", ""])
def test_the_old_environment_input_fails_saying_it_was_renamed(tmp_path: Path, value: str) -> None:
    """A snippet from before the rename: no alias (nothing was released with the
    old name), an input error that names the new one, before any request."""
    with pytest.raises(ConfigError) as caught:
        load_config(flow_env(tmp_path, "preview", environment=value))
    assert caught.value.input_name == "environment"
    assert "renamed to 'deployment-environment'" in str(caught.value)
    assert "environment:" in str(caught.value)  # why: the job's own key


def test_the_simple_flow_expects_a_commit_only_for_the_runs_own_branch() -> None:
    base = {
        "INPUT_API-TOKEN": "tok-1234",
        "INPUT_WORKSPACE-ID": "42",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
    }
    assert load_config(base).expected_commit == ""  # the workspace pulls its own branch
    assert load_config({**base, "INPUT_BRANCH": "main"}).expected_commit == "a" * 40
    assert load_config({**base, "INPUT_BRANCH": "production"}).expected_commit == ""


def test_require_commit_expects_github_sha_whatever_the_branch() -> None:
    base = {
        "INPUT_API-TOKEN": "tok-1234",
        "INPUT_WORKSPACE-ID": "42",
        "INPUT_REQUIRE-COMMIT": "true",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
    }
    assert load_config(base).expected_commit == "a" * 40
    assert load_config({**base, "INPUT_BRANCH": "production"}).expected_commit == "a" * 40
    for sha in ("", "abc"):
        with pytest.raises(ConfigError, match=r"input 'require-commit' is 'true'.*GITHUB_SHA"):
            load_config({**base, "GITHUB_SHA": sha})
    rollback = {**base, "INPUT_FLOW": "rollback", "INPUT_TEAM-ID": "7", "INPUT_DOMAIN": "a.example"}
    with pytest.raises(ConfigError, match=r"input 'require-commit' is 'true'.*rollback"):
        load_config(rollback)
    assert load_config({**rollback, "INPUT_REQUIRE-COMMIT": "false"}).expected_commit == ""


@pytest.mark.parametrize(
    ("repository", "zero_downtime", "preview"),
    [
        ("acme/shop", "shop-ccccccc", "shop-pr-5"),
        ("acme/.github", "github-ccccccc", "github-pr-5"),
        ("acme/_internal", "internal-ccccccc", "internal-pr-5"),
        ("acme/-._", "workspace-ccccccc", "workspace-pr-5"),
        ("acme/" + "r" * 100, "r" * 55 + "-ccccccc", "r" * 58 + "-pr-5"),
    ],
)
def test_default_names_are_valid_for_any_repository_name(
    tmp_path: Path, repository: str, zero_downtime: str, preview: str
) -> None:
    assert default_workspace_name(repository, "c" * 40) == zero_downtime
    assert preview_workspace_name(repository, 5) == preview
    environ = {**flow_env(tmp_path, "zero-downtime"), "GITHUB_REPOSITORY": repository}
    assert load_config(environ).workspace_name == zero_downtime


# -- canary and bake-time (issue 22) -----------------------------------------------------
def test_canary_needs_what_zero_downtime_needs_and_the_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="input 'domain' is empty: the canary flow needs the "):
        load_config(flow_env(tmp_path, "canary"))
    config = load_config(flow_env(tmp_path, "canary", domain="shop.example.com"))
    assert (config.flow, config.bake_time, config.workspace_name) == ("canary", 0.0, "shop-ccccccc")
    assert config.spec.creates and config.spec.joins and config.spec.bakes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("0.0m", 0.0), ("90", 90.0), ("90s", 90.0), ("10m", 600.0),
     ("1h30m", 5400.0)],
)  # fmt: skip
def test_bake_time_takes_zero_or_a_duration(tmp_path: Path, text: str, seconds: float) -> None:
    environ = flow_env(
        tmp_path,
        "canary",
        domain="shop.example.com",
        bake_time=text,
        health_check_path="/healthz",
    )
    assert load_config(environ).bake_time == seconds


@pytest.mark.parametrize(
    ("flow", "inputs", "says"),
    [
        ("canary", {"bake_time": "soon"}, "is 'soon': expected 0 (no bake) or a duration"),
        ("canary", {"bake_time": "-1m"}, "is '-1m': expected 0 (no bake) or a duration"),
        ("canary", {"bake_time": "7h"}, "is '7h': expected 0 (no bake) or a duration"),
        ("canary", {"bake_time": "10m"}, "is '10m': the bake checks health-check-path, which "
         "is not set: set it"),
        ("zero-downtime", {"bake_time": "10m", "health_check_path": "/h", "domain": ""},
         "the bake watches the domain after the switch: set domain"),
        ("zero-downtime", {"bake_time": "10m", "health_check_path": "/h", "domain": "a.example",
         "switch": "false"}, "the bake watches the domain after the switch"),
    ],
)  # fmt: skip
def test_bake_time_errors_name_the_input_and_the_fix(
    tmp_path: Path, flow: str, inputs: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match="input 'bake-time' ") as caught:
        load_config(flow_env(tmp_path, flow, **{"domain": "shop.example.com", **inputs}))
    assert says in str(caught.value)


def test_a_flow_that_does_not_bake_ignores_bake_time_and_says_so(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "promote", workspace_id="4", domain="a.example", bake_time="1m")
    config = load_config(environ)
    assert config.bake_time == 0.0 and "bake-time" in config.ignored


def test_zero_downtime_bakes_with_a_domain_and_its_switch(tmp_path: Path) -> None:
    environ = flow_env(
        tmp_path, "zero-downtime", domain="a.example", bake_time="2m", health_check_path="/h"
    )
    assert load_config(environ).bake_time == 120.0


def test_a_canary_always_joins(tmp_path: Path) -> None:
    environ = flow_env(tmp_path, "canary", domain="shop.example.com", switch="false")
    with pytest.raises(ConfigError, match="input 'switch' is 'false': the canary flow always"):
        load_config(environ)
