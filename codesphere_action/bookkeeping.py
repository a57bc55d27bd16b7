"""What the action tells GitHub besides the log, with ``github-token``: the
deployment (deployments.py) and the pull request's preview comment
(pr_comment.py). Neither ever fails a release.

Each end of the run gets ``GITHUB_SECONDS`` for all its calls, cut by the
cancel budget once the runner signals (after a cancellation the outputs and
the summary are written first; these calls get what is left)."""

from __future__ import annotations

from collections.abc import Callable

from .clock import Clock
from .config import Config
from .context import Result
from .deployments import Deployments
from .github import Reporter
from .github_api import GitHubApi
from .pr_comment import PreviewComment, is_for
from .timings import GITHUB_SECONDS, Deadline


class GitHubBookkeeping:
    def __init__(
        self,
        config: Config,
        reporter: Reporter,
        clock: Clock,
        cancel: Callable[[], float | None],
    ) -> None:
        self.clock, self.cancel = clock, cancel
        self.api = GitHubApi(config, reporter, clock)
        self.deployments = Deployments(config, reporter, self.api)
        self.comment = PreviewComment(config, reporter, self.api) if is_for(config) else None

    def _deadline(self) -> Deadline:
        return Deadline.after(GITHUB_SECONDS, self.clock, self.cancel)

    def begin(self) -> None:
        self.deployments.begin(self._deadline())

    def finish(self, result: Result) -> None:
        deadline = self._deadline()
        try:
            self.deployments.finish(result, deadline)
            if self.comment is not None:
                self.comment.finish(result, deadline)
        finally:
            self.api.close()
