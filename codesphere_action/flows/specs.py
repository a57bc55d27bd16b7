"""The flows as a table: one ``FlowSpec`` per value of the ``flow`` input.

Every module that asks "which flow is this?" reads the spec instead: config
(the inputs a flow needs, its defaults), the summary and the notices (its
words), the GitHub deployment and the pull request's comment, the mark on
the workspaces it creates. Adding a flow is one module in ``flows/`` with a
``run(ctx)`` function and one row here (CONTRIBUTING.md, "Adding a flow").

Pure data, standard library only: config reads it before any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# Which commit a run of the flow is expected to deploy (Config.expected_commit):
# "pull-request": the pull request's head; "sha": GITHUB_SHA; "own-branch":
# GITHUB_SHA when the branch released is the run's own (or require-commit says
# so); "back": none on purpose (a rollback), so require-commit is an input
# error; "": the flow deploys nothing (require-commit does not apply).
Commit = Literal["pull-request", "sha", "own-branch", "back", ""]


@dataclass(frozen=True)
class FlowSpec:
    name: str
    module: str  # codesphere_action.flows.<module>, whose run(ctx) performs it
    # Inputs the flow cannot do without, each with what the flow needs it for
    # ("" for an id: "it (a numeric id)"); checked before any request.
    needs: Mapping[str, str] = field(default_factory=dict)
    creates: bool = False  # it creates a workspace from the repository
    # What else it does, which says the inputs it reads (input_uses.py): it runs
    # the stages on a workspace; it pulls into one that exists; it points a
    # domain's path at workspaces; it deletes what releases left behind.
    stages: bool = False
    pulls: bool = False
    switches: bool = False
    prunes: bool = False
    # It works on a pull request: "open" (preview) or "closed" (teardown), as the
    # event's action says; "" for a flow that works on any event.
    pull_request: Literal["open", "closed", ""] = ""
    # workspace-id: one id, or a list (the previous-workspace-id output verbatim).
    ids: Literal["one", "list"] = "one"
    # The branch when the input is empty: "ref" (GITHUB_REF_NAME), "pull-request"
    # (its head branch), "" (the workspace's current branch / none).
    default_branch: Literal["ref", "pull-request", ""] = ""
    # The workspace name when the input is empty: "commit" (<repo>-<sha7>),
    # "pull-request" (<repo>-pr-<number>), "" (none).
    default_name: Literal["commit", "pull-request", ""] = ""
    commit: Commit = "own-branch"
    # GitHub bookkeeping (github-token): a deployment tracked through the run, or
    # the pull request's deployments marked inactive (teardown); its default
    # environment; whether the pull request's preview comment is kept.
    deployment: Literal["track", "deactivate", "none"] = "track"
    environment: Literal["production", "preview"] = "production"
    comment: bool = False
    # It judges workspaces by this repository's mark alone: GITHUB_REPOSITORY must
    # name it (prune), or nothing it may delete can be told apart.
    repository: bool = False
    # bake-time applies: after its switch the release is watched, then completed
    # or undone on its own (steps/bake.py).
    bakes: bool = False
    # The new workspace joins domain-path's list beside the workspaces serving it
    # (a canary) instead of replacing them.
    joins: bool = False
    # Its words: what a run is called, and the headline of a success.
    noun: str = "Release"
    done: str = "Released"


SPECS: dict[str, FlowSpec] = {
    spec.name: spec
    for spec in (
        FlowSpec(
            "simple",
            "simple",
            needs={"workspace-id": "the id of the workspace to release"},
            stages=True,
            pulls=True,
        ),
        FlowSpec(
            "zero-downtime",
            "zero_downtime",
            needs={"team-id": "", "plan-id": "", "git-url": "", "workspace-name": "", "branch": ""},
            creates=True,
            stages=True,
            switches=True,
            default_branch="ref",
            default_name="commit",
            bakes=True,
        ),
        FlowSpec(
            "canary",
            "canary",
            needs={
                "team-id": "",
                "plan-id": "",
                "git-url": "",
                "workspace-name": "",
                "branch": "",
                "domain": "the domain whose domain-path the canary joins",
            },
            creates=True,
            stages=True,
            switches=True,
            default_branch="ref",
            default_name="commit",
            bakes=True,
            joins=True,
            noun="Canary",
            done="Canary serving",
        ),
        FlowSpec(
            "preview",
            "preview",
            needs={"team-id": "", "plan-id": "", "git-url": "", "workspace-name": ""},
            creates=True,
            stages=True,
            pulls=True,
            pull_request="open",
            default_branch="pull-request",
            default_name="pull-request",
            commit="pull-request",
            environment="preview",
            comment=True,
            noun="Preview",
            done="Preview ready",
        ),
        FlowSpec(
            "teardown",
            "teardown",
            needs={"workspace-name": "", "team-id": ""},
            pull_request="closed",
            default_name="pull-request",
            commit="",
            deployment="deactivate",
            environment="preview",
            comment=True,
            noun="Teardown",
            done="Torn down",
        ),
        FlowSpec(
            "promote",
            "promote",
            needs={
                "team-id": "",
                "workspace-id": "the id of the workspace to point the domain at, e.g. the "
                "workspace-id output of a release with switch: false",
                "domain": "the domain to switch",
            },
            switches=True,
            commit="sha",
            noun="Promotion",
            done="Promoted",
        ),
        FlowSpec(
            "rollback",
            "promote",  # one operation aimed forward or back
            needs={
                "team-id": "",
                "workspace-id": "the id of the workspace to point the domain back at, e.g. "
                "the previous-workspace-id output of the last release",
                "domain": "the domain to switch",
            },
            switches=True,
            ids="list",
            commit="back",
            noun="Rollback",
            done="Rolled back",
        ),
        FlowSpec(
            "prune",
            "prune",
            needs={"team-id": ""},
            prunes=True,
            commit="",
            deployment="none",
            repository=True,
            noun="Prune",
            done="Pruned",
        ),
    )
}
FLOW_NAMES = tuple(SPECS)
