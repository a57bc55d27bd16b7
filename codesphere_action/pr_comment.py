"""One comment per pull request with its preview: the URL, the commit, the
status and a link to the run. With ``github-token`` (the job needs
``permissions: pull-requests: write``), for the preview and teardown flows.

The comment is found again by a hidden marker and edited on every push, so a
pull request never collects a comment per push; teardown edits it to say the
preview is gone (and creates none when there is none to edit). Like the
Deployments calls, a failure here is one warning and never fails the run.
"""

from __future__ import annotations

from .config import Config
from .context import Result
from .github import Reporter, sentence
from .github_api import TIMEOUT, GitHubApi, GitHubError

MARKER = "<!-- codesphere-release:preview -->"
MAX_PAGES = 5  # 500 comments: a pull request with more is looked through no further
HINTS = {
    403: "give the job `permissions: pull-requests: write`",
    404: "the token cannot see the pull request, or the job lacks `pull-requests: write`",
}
HEADLINES = {
    "success": "✅ Preview ready",
    "failed": "❌ Preview update failed",
    "timed-out": "⏱️ Preview update timed out",
    "cancelled": "⚪ Preview update cancelled",
}


class PreviewComment:
    def __init__(self, config: Config, reporter: Reporter, api: GitHubApi) -> None:
        assert config.pull_request is not None
        self.config = config
        self.number = config.pull_request.number
        self.reporter = reporter
        self.api = api

    def finish(self, result: Result) -> None:
        """Write the comment for the run's outcome. Never raises. A run that ended
        skipped writes nothing: the preview is another run's to report (one that
        took it over), or gone with its pull request."""
        if result.status == "skipped":
            return
        timeout = TIMEOUT
        try:
            existing = self._find(timeout)
            # The message may quote a build log: secrets never reach the comment.
            body = self.reporter.redact(self.render(result))
            if existing is not None:
                self.api.call(
                    "PATCH",
                    f"/issues/comments/{existing}",
                    {"body": body},
                    timeout=timeout,
                    hints=HINTS,
                )
                self.reporter.info(f"Updated the preview comment on pull request #{self.number}")
            elif self.config.flow == "preview":
                self.api.call(
                    "POST",
                    f"/issues/{self.number}/comments",
                    {"body": body},
                    timeout=timeout,
                    hints=HINTS,
                )
                self.reporter.info(f"Commented the preview on pull request #{self.number}")
        except GitHubError as exc:
            self._warn(str(exc))
        except Exception as exc:  # noqa: BLE001 (never fail a release over its bookkeeping)
            self._warn(f"unexpected {type(exc).__name__}: {exc}")

    def _find(self, timeout: tuple[float, float]) -> int | None:
        for page in range(1, MAX_PAGES + 1):
            comments = self.api.call(
                "GET",
                f"/issues/{self.number}/comments",
                params={"per_page": "100", "page": str(page)},
                timeout=timeout,
                hints=HINTS,
            )
            if not isinstance(comments, list):
                raise GitHubError("the comments of the pull request are not a list")
            for comment in comments:
                if isinstance(comment, dict) and MARKER in str(comment.get("body", "")):
                    return int(comment["id"])
            if len(comments) < 100:
                return None
        return None

    def render(self, result: Result) -> str:
        config, out = self.config, result.outputs
        if config.flow == "teardown":
            headline = "🗑️ Preview deleted" if result.status == "success" else "❌ Teardown failed"
        else:
            headline = HEADLINES.get(result.status, result.status)
        rows: list[tuple[str, str]] = []
        if config.flow == "teardown" and result.status == "success":
            rows.append(("Workspace", f"{result.workspace_name}: deleted with the pull request"))
        else:
            if out["workspace-url"]:
                rows.append(("URL", out["workspace-url"]))
            commit = out["deployed-commit"]
            if commit:
                link = f"[`{commit[:7]}`]({config.server_url}/{config.repository}/commit/{commit})"
                rows.append(("Commit", link))
            if out["workspace-id"]:
                rows.append(("Workspace", f"`{out['workspace-id']}` ({result.workspace_name})"))
        if result.status not in ("success", "skipped") and result.message:
            rows.append(("Why", _cell(sentence(result.message))[:300]))
        if config.run_url:
            rows.append(("Run", f"[the run's log]({config.run_url})"))
        lines = [MARKER, f"### {headline} · Codesphere", "", "| | |", "|---|---|"]
        lines += [f"| **{name}** | {value} |" for name, value in rows]
        return "\n".join(lines) + "\n"

    def _warn(self, why: str) -> None:
        self.reporter.warning(
            f"the preview comment on pull request #{self.number} was not written: {why}. "
            "The release itself is not affected",
            title="Pull request comment",
        )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def is_for(config: Config) -> bool:
    """Whether this run keeps a preview comment."""
    return (
        bool(config.github_token)
        and config.pull_request is not None
        and config.flow
        in (
            "preview",
            "teardown",
        )
    )
