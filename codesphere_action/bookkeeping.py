"""What the action tells GitHub besides the log, with ``github-token``: the
deployment (deployments.py) and the pull request's preview comment
(pr_comment.py). Neither ever fails a release."""

from __future__ import annotations

from collections.abc import Callable

from .config import Config
from .context import Result
from .deployments import Deployments
from .github import Reporter
from .github_api import GitHubApi
from .pr_comment import PreviewComment, is_for


class GitHubBookkeeping:
    def __init__(self, config: Config, reporter: Reporter) -> None:
        self.api = GitHubApi(config)
        self.deployments = Deployments(config, reporter, self.api)
        self.comment = PreviewComment(config, reporter, self.api) if is_for(config) else None

    def begin(self) -> None:
        self.deployments.begin()

    def finish(self, result: Result, seconds_left: Callable[[], float | None]) -> None:
        """``seconds_left``: what remains of the cancel budget (None: not cancelled);
        every call is cut to it."""
        self.api.seconds_left = seconds_left
        try:
            self.deployments.finish(result)
            if self.comment is not None:
                self.comment.finish(result)
        finally:
            self.api.close()
