"""What a flow needs before any request: the inputs its spec names, the pull
request it works on, the commit require-commit compares with, what a bake
watches. Each missing one is a ConfigError naming the input (or a
ContextError naming the event)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError, ContextError
from .github_context import check_event_action
from .inputs import Inputs, parse_bake_time, parse_bool

if TYPE_CHECKING:
    from .config import Config
    from .flows.specs import FlowSpec

# What an input the flow needs is for, when its spec gives no words of its own.
NEEDED = {
    "git-url": "set it, or run in a workflow where GITHUB_REPOSITORY is set",
    "branch": "set it, or run where GITHUB_REF_NAME (the triggering branch) is set",
}


def check_needs(config: Config) -> None:
    """The inputs the flow's spec needs, in its order; the pull request it works
    on; the commit require-commit compares with."""
    spec = config.spec
    if spec.repository and not config.run.repository:
        raise ContextError(
            f"the {spec.name} flow deletes what codesphere-release made for this repository, "
            "which it tells by GITHUB_REPOSITORY, and that is not set: run it in a GitHub "
            "workflow (the runner sets it), or set it to owner/name for a local run"
        )
    _check_require_commit(config)
    if spec.joins and not config.switch:
        raise ConfigError(
            "switch",
            "false",
            f"the {spec.name} flow always joins domain-path beside the workspaces serving it; "
            "to build a release without serving it, use flow: zero-downtime with switch: false",
        )
    if spec.pull_request:
        _check_pull_request(config)
    for name, words in spec.needs.items():
        if _given(config, name):
            continue
        if words:
            raise ConfigError(name, "", f"the {spec.name} flow needs {words}")
        if name == "workspace-name":
            context = "GITHUB_SHA" if spec.default_name == "commit" else "the pull request event"
            raise ConfigError(
                name, "", f"set it, or run where GITHUB_REPOSITORY and {context} are set"
            )
        raise ConfigError(
            name, "", NEEDED.get(name, f"the {spec.name} flow needs it (a numeric id)")
        )


def _given(config: Config, name: str) -> bool:
    value = {
        "workspace-id": config.workspace_id,
        "team-id": config.team_id,
        "plan-id": config.plan_id,
        "git-url": config.git_url or None,
        "workspace-name": config.workspace_name or None,
        "branch": config.branch or None,
        "domain": config.domain or None,
    }[name]
    return value is not None


def _check_require_commit(config: Config) -> None:
    """require-commit: true needs a commit to compare with; where none can be
    known it is an input error, before any request (never a check that
    silently does nothing)."""
    commit = config.spec.commit
    if not config.require_commit or commit in ("pull-request", ""):
        return  # preview: the pull request's head; teardown deploys nothing
    if commit == "back":
        raise ConfigError(
            "require-commit",
            "true",
            "a rollback goes back to an earlier release on purpose, so there is no commit it "
            "must run: remove the input (or set it to false) for flow: rollback",
        )
    if not config.expected_commit:
        shown = f"'{config.run.sha}'" if config.run.sha else "not set"
        raise ConfigError(
            "require-commit",
            "true",
            f"it compares the deployed commit with GITHUB_SHA, which is {shown}: run in a "
            "GitHub workflow (the runner sets GITHUB_SHA), or set require-commit to false",
        )


def _check_pull_request(config: Config) -> None:
    """A flow that creates from a pull request (preview) needs its event; one that
    does not (teardown) may be given ``workspace-name`` instead: only a pull
    request event or that name says which preview is meant. On a pull request
    event, a preview of a closed pull request and a teardown of an open one are
    skipped (Skipped)."""
    pull = config.pull_request
    if pull is not None:
        check_event_action(config.flow, pull)
        return
    if not config.spec.creates and config.workspace_name:
        return
    trigger = (
        f"this run was triggered by '{config.run.event_name}' (GITHUB_EVENT_NAME)"
        if config.run.event_name
        else "GITHUB_EVENT_NAME is not set"
    )
    fix = (
        "run it on: pull_request, as in examples/preview.yml"
        if config.spec.pull_request == "open"
        else "run it on: pull_request (types: [closed]), or set the input 'workspace-name' "
        "to the preview workspace to delete"
    )
    raise ContextError(f"the {config.flow} flow works on a pull request, but {trigger}: {fix}")


def bake_time(inputs: Inputs, spec: FlowSpec) -> float:
    """bake-time (0: no bake), for a flow that bakes (another ignores it, and
    the "Inputs ignored" warning names it); the bake checks health-check-path,
    and zero-downtime's watches the domain it switched."""
    text = inputs.get("bake-time", "0")
    seconds = parse_bake_time("bake-time", text)
    if not seconds or not spec.bakes:  # another flow ignores it (input_uses.py)
        return 0.0
    if not inputs.get("health-check-path"):
        raise ConfigError(
            "bake-time",
            text,
            "the bake checks health-check-path, which is not set: set it (e.g. /healthz), "
            "or remove bake-time",
        )
    if "domain" not in spec.needs and not (
        inputs.get("domain") and parse_bool("switch", inputs.get("switch", "true"))
    ):
        raise ConfigError(
            "bake-time",
            text,
            "the bake watches the domain after the switch: set domain (and leave switch "
            "true), or remove bake-time",
        )
    return seconds
