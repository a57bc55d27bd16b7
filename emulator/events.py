"""Pull-request events for end-to-end tests: the JSON file GITHUB_EVENT_PATH names."""

from __future__ import annotations

import json
from pathlib import Path

from .runner import Runner

PR = 5
BRANCH = "feature/checkout"
HEAD = "a" * 40  # the pull request's head commit
MERGE = "c" * 40  # GITHUB_SHA of a pull_request event: the test merge commit
PREVIEW = f"shop-pr-{PR}"  # <repository name>-pr-<number>


def pr_event(
    runner: Runner,
    *,
    number: int = PR,
    ref: str = BRANCH,
    sha: str = HEAD,
    action: str = "opened",
    head_repository: str | None = "acme/shop",
    event_name: str = "pull_request",
    state: str | None = None,
    repository: str = "acme/shop",
) -> dict[str, str]:
    """Write the event payload; return the variables the runner sets for it.

    ``head_repository=None``: the head repository is gone (a deleted fork), which
    GitHub sends as ``"repo": null``. ``state`` defaults to what ``action`` implies
    (``closed`` for ``closed``, else ``open``). ``repository``: the base repository
    (GITHUB_REPOSITORY of the run)."""
    path = Path(runner.tmp) / f"event-{number}-{action}-{sha[:7]}.json"
    head_repo = None if head_repository is None else {"full_name": head_repository}
    payload = {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": state or ("closed" if action == "closed" else "open"),
            "head": {"ref": ref, "sha": sha, "repo": head_repo},
            "base": {"ref": "main", "sha": "b" * 40, "repo": {"full_name": repository}},
        },
        "repository": {"full_name": repository},
    }
    path.write_text(json.dumps(payload))
    return {
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REF_NAME": f"{number}/merge",
        "GITHUB_SHA": MERGE,
    }
