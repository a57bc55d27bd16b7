"""GitHub Deployments for a run, when the ``github-token`` input is set (off by default).

What Codesphere's own action does for previews, for every flow but teardown:
1. before the flow: ``POST /repos/{owner}/{repo}/deployments`` for the ref
   (the pull request's head for a preview, else GITHUB_SHA) and ``environment``
   (transient for previews), then a status ``in_progress`` linking the run;
2. after it: ``success`` with ``environment_url`` (the domain URL, else the
   workspace URL), ``inactive`` when the run ended skipped (a preview another
   run took over), or ``failure``.
Teardown marks the environment's deployments ``inactive`` once the workspace
is gone.

A Deployments call that fails never fails the release: it becomes one
``::warning`` and the calls that depend on it are skipped.
"""

from __future__ import annotations

from typing import Any

from .config import Config
from .context import Result
from .github import Reporter
from .github_api import TIMEOUT, GitHubApi, GitHubError, message
from .summary import flow_words

MAX_DESCRIPTION = 140  # GitHub's limit for a status description
MAX_DEACTIVATE = 100  # one page of deployments is plenty for one preview environment
HINTS = {
    403: "give the job `permissions: deployments: write`",
    404: "the token cannot see the repository, or the job lacks `permissions: deployments: write`",
}


class Deployments:
    def __init__(self, config: Config, reporter: Reporter, api: GitHubApi) -> None:
        self.config = config
        self.reporter = reporter
        self.api = api
        self.deployment_id: int | None = None

    # -- what main calls -----------------------------------------------------
    def begin(self) -> None:
        """Create the deployment and mark it ``in_progress`` (nothing for teardown)."""
        config = self.config
        if config.flow == "teardown":
            return
        if not config.deployment_ref:
            self._warn("creating a deployment", "no commit to deploy (GITHUB_SHA is not set)")
            return
        preview = config.flow == "preview"
        body: dict[str, Any] = {
            "ref": config.deployment_ref,
            "environment": config.environment,
            "auto_merge": False,
            "required_contexts": [],
            "description": _short(f"Codesphere {config.flow} flow"),
        }
        if preview:
            body["transient_environment"] = True
            body["production_environment"] = False
        try:
            self.deployment_id = self._create(body)
            self._status("in_progress", f"Codesphere {config.flow} flow running")
        except GitHubError as exc:
            self._warn(f"creating a deployment for environment {config.environment}", str(exc))
            return
        self.reporter.info(
            f"GitHub deployment {self.deployment_id} (environment {config.environment}): "
            "in progress"
        )

    def finish(self, result: Result) -> None:
        """Report the run's end: ``success`` with the URL or ``failure``; for
        teardown, mark the environment's deployments ``inactive``. Never raises."""
        timeout = TIMEOUT
        try:
            if self.config.flow == "teardown":
                if result.status == "success":
                    self._deactivate(timeout)
                return
            if self.deployment_id is None:
                return
            what, done = flow_words(self.config.flow)
            if result.status == "success":
                url = result.outputs["domain-url"] or result.outputs["workspace-url"]
                self._status("success", f"{done}: {url}" if url else done, url, timeout=timeout)
            elif result.status == "skipped":
                # Nothing this run built is live (another run took the preview over,
                # or the pull request closed meanwhile): nothing failed either.
                self._status("inactive", f"{what} skipped", timeout=timeout)
            else:
                self._status("failure", f"{what} {result.status}", timeout=timeout)
            self.reporter.info(f"GitHub deployment {self.deployment_id}: {result.status}")
        except GitHubError as exc:
            self._warn(f"updating deployment {self.deployment_id}", str(exc))
        except Exception as exc:  # noqa: BLE001 (never fail a release over its bookkeeping)
            self._warn("the Deployments update", f"unexpected {type(exc).__name__}: {exc}")

    # -- calls ---------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> int:
        created = self._call_api("POST", "/deployments", body)
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise GitHubError(f"GitHub created no deployment: {message(created)}")
        return int(created["id"])

    def _status(
        self,
        state: str,
        description: str,
        environment_url: str = "",
        *,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        body: dict[str, Any] = {"state": state, "description": _short(description)}
        if self.config.run_url:
            body["log_url"] = self.config.run_url
        if environment_url:
            body["environment_url"] = environment_url
        self._call_api("POST", f"/deployments/{self.deployment_id}/statuses", body, timeout=timeout)

    def _deactivate(self, timeout: tuple[float, float]) -> None:
        environment = self.config.environment
        if not environment:
            self.reporter.info("No environment to deactivate (no pull request, no 'environment')")
            return
        listed = self._call_api(
            "GET",
            "/deployments",
            params={"environment": environment, "per_page": str(MAX_DEACTIVATE)},
            timeout=timeout,
        )
        found = [d["id"] for d in listed or [] if isinstance(d, dict) and "id" in d]
        for deployment_id in found:
            self._call_api(
                "POST",
                f"/deployments/{deployment_id}/statuses",
                {"state": "inactive", "description": "Preview workspace deleted"},
                timeout=timeout,
            )
        self.reporter.info(
            f"GitHub environment {environment}: {len(found)} deployment(s) marked inactive"
        )

    def _call_api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> Any:
        return self.api.call(method, path, body, params=params, timeout=timeout, hints=HINTS)

    def _warn(self, what: str, why: str) -> None:
        self.reporter.warning(
            f"GitHub Deployments: {what} failed: {why}. The release itself is not affected",
            title="GitHub Deployments",
        )


def _short(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
