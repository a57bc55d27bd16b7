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
from .errors import Cancelled
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
        self.clock, self.cancel, self.reporter = clock, cancel, reporter
        self.api = GitHubApi(config, reporter, clock)
        self.deployments = Deployments(config, reporter, self.api)
        self.comment = PreviewComment(config, reporter, self.api) if is_for(config) else None

    def _deadline(self) -> Deadline:
        return Deadline.after(GITHUB_SECONDS, self.clock, self.cancel)

    def begin(self) -> None:
        self.deployments.begin(self._deadline())

    def finish(self, result: Result) -> None:
        """Update the deployment and the comment. A cancel that comes meanwhile
        cuts the call in flight (main lets it raise here): one warning, and the
        run ends as it would have."""
        deadline = self._deadline()
        try:
            self.deployments.finish(result, deadline)
            if self.comment is not None:
                self.comment.finish(result, deadline)
        except Cancelled as exc:
            self.reporter.warning(
                f"GitHub was not told how the run ended: {exc} while its calls were under "
                "way. The release itself is not affected",
                title="GitHub bookkeeping",
            )
        finally:
            self.api.close()
