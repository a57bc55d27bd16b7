"""One comment per app per pull request with its preview: the URL, the
commit, the status and a link to the run. With ``github-token`` (the job needs
``permissions: pull-requests: write``), for the preview and teardown flows.

The comment is found again and edited on every push, so a pull request never
collects a comment per push; teardown edits it to say the preview is gone
(and creates none when there is none to edit). It is the comment that
- begins with the marker, which names the app's workspace (``workspace-name``
  or its default), so two apps of one repository keep a comment each;
- was written by the token's identity: the user ``GET /user`` names (a
  personal token), else a bot (GITHUB_TOKEN writes as ``github-actions[bot]``,
  which is preferred to any other bot). A person's comment that quotes the
  marker is never edited.
A comment of an older version (the marker without the workspace) is taken
over, by the first app that finds no comment of its own.
Like the Deployments calls, a failure here is one warning and never fails the run.
"""

from __future__ import annotations

from .config import Config
from .context import Result
from .github import Reporter, sentence
from .github_api import GitHubApi, GitHubError
from .timings import Deadline

LEGACY_MARKER = "<!-- codesphere-release:preview -->"  # before the marker named the app
# GitHub refuses new comments on a pull request past about 2,500 ("Commenting is
# disabled on issues with more than 2500 comments"): 30 pages of 100 hold them all.
MAX_PAGES = 30
PAGE = 100
ACTIONS_BOT = "github-actions[bot]"  # the author of what GITHUB_TOKEN writes
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
        self.marker = marker(config.workspace_name)
        self._login: str | None = None  # the token's user, once asked ("" for a bot)

    def finish(self, result: Result, deadline: Deadline) -> None:
        """Write the comment for the run's outcome. Never raises. A run that ended
        skipped writes nothing: the preview is another run's to report (one that
        took it over), or gone with its pull request."""
        if result.status == "skipped":
            return
        try:
            existing = self._find(deadline)
            # The message may quote a build log: secrets never reach the comment.
            body = self.reporter.redact(self.render(result))
            if existing is not None:
                self.api.call(
                    "PATCH",
                    f"/issues/comments/{existing}",
                    {"body": body},
                    deadline=deadline,
                    hints=HINTS,
                )
                self.reporter.info(f"Updated the preview comment on pull request #{self.number}")
            elif self.config.spec.creates:  # a preview; its teardown only edits
                self.api.call(
                    "POST",
                    f"/issues/{self.number}/comments",
                    {"body": body},
                    deadline=deadline,
                    hints=HINTS,
                )
                self.reporter.info(f"Commented the preview on pull request #{self.number}")
        except GitHubError as exc:
            self._warn(str(exc))
        except Exception as exc:  # noqa: BLE001 (never fail a release over its bookkeeping)
            self._warn(f"unexpected {type(exc).__name__}: {exc}")

    def _find(self, deadline: Deadline) -> int | None:
        """The id of this app's comment (see the module docstring), None if none.
        Whatever the number of comments: the first page (an early comment is
        found with one request), then from the last page (the ``Link`` header)
        backwards, newest first."""
        best: tuple[int, int] | None = None  # (rank, id): the lower the rank the better

        def look(page: int) -> dict[str, int]:
            nonlocal best
            comments, links = self.api.list_page(
                f"/issues/{self.number}/comments",
                {"per_page": str(PAGE), "page": str(page)},
                deadline=deadline,
                hints=HINTS,
            )
            for comment in reversed(comments):
                rank = self._rank(comment, deadline)
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, int(comment["id"]))
            return links

        links = look(1)
        last = links.get("last")
        if last is None and "next" in links:  # no last page named: walk forward
            order: range = range(2, MAX_PAGES + 1)
        else:
            order = range(last or 1, max(1, (last or 1) - MAX_PAGES + 1), -1)
        for page in order:
            if best is not None and best[0] == 0:
                break
            links = look(page)
            if last is None and "next" not in links:
                break
        return None if best is None else best[1]

    def _rank(self, comment: object, deadline: Deadline) -> int | None:
        """How surely the comment is this app's: 0 its marker and the token's own
        identity, 1 its marker and some other bot (a bot token whose name is not
        known), 2 and 3 the same with an older version's marker; None: not its."""
        if not isinstance(comment, dict) or not isinstance(comment.get("id"), int):
            return None
        body = comment.get("body")
        if not isinstance(body, str):
            return None
        first_line = body.split("\n", 1)[0].rstrip("\r")
        if first_line == self.marker:
            base = 0
        elif first_line == LEGACY_MARKER:
            base = 2
        else:
            return None
        user = comment.get("user")
        login = user.get("login") if isinstance(user, dict) else None
        kind = user.get("type") if isinstance(user, dict) else None
        me = self._identity(deadline)
        if me:
            return base if login == me else None
        if kind != "Bot":
            return None  # a person's, quoting the marker
        return base if login == ACTIONS_BOT else base + 1

    def _identity(self, deadline: Deadline) -> str:
        """The login of the token's user (a personal token), "" for a bot's token
        (GITHUB_TOKEN, a GitHub App's: ``GET /user`` answers 403 "Resource not
        accessible by integration" for those). Any other failure raises
        GitHubError: guessing could make a second comment."""
        if self._login is None:
            try:
                answer = self.api.call("GET", "/user", deadline=deadline, repo=False)
            except GitHubError as exc:
                if exc.status != 403:
                    raise
                answer = None
            login = answer.get("login") if isinstance(answer, dict) else None
            self._login = login if isinstance(login, str) else ""
        return self._login

    def render(self, result: Result) -> str:
        config, out = self.config, result.outputs
        deletes = config.spec.deployment == "deactivate"  # the teardown
        if deletes:
            headline = "🗑️ Preview deleted" if result.status == "success" else "❌ Teardown failed"
        else:
            headline = HEADLINES.get(result.status, result.status)
        rows: list[tuple[str, str]] = []
        if deletes and result.status == "success":
            rows.append(("Workspace", f"{result.workspace_name}: deleted with the pull request"))
        else:
            if out["workspace-url"]:
                rows.append(("URL", out["workspace-url"]))
            commit = out["deployed-commit"]
            if commit:
                run = config.run
                link = f"[`{commit[:7]}`]({run.server_url}/{run.repository}/commit/{commit})"
                rows.append(("Commit", link))
            if out["workspace-id"]:
                rows.append(("Workspace", f"`{out['workspace-id']}` ({result.workspace_name})"))
        if result.status not in ("success", "skipped") and result.message:
            # Redacted before it is cut: a cut must never leave part of a secret.
            rows.append(("Why", _cell(sentence(self.reporter.redact(result.message)))[:300]))
        if config.run.url:
            rows.append(("Run", f"[the run's log]({config.run.url})"))
        lines = [self.marker, f"### {headline} · Codesphere", "", "| | |", "|---|---|"]
        lines += [f"| **{name}** | {value} |" for name, value in rows]
        return "\n".join(lines) + "\n"

    def _warn(self, why: str) -> None:
        self.reporter.warning(
            f"the preview comment on pull request #{self.number} was not written: {why}. "
            "The release itself is not affected",
            title="Pull request comment",
        )


def marker(workspace_name: str) -> str:
    """The first line of an app's comment: hidden, and naming the app's workspace."""
    return f"<!-- codesphere-release:preview workspace={workspace_name} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def is_for(config: Config) -> bool:
    """Whether this run keeps a preview comment."""
    return bool(config.github.token) and config.pull_request is not None and config.spec.comment
