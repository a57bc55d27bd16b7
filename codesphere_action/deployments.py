"""GitHub Deployments for a run, when the ``github-token`` input is set (off by default).

What Codesphere's own action does for previews, for every flow but teardown:
1. before the flow: ``POST /repos/{owner}/{repo}/deployments`` for the ref
   (the pull request's head for a preview, else GITHUB_SHA) and ``environment``
   (transient for previews), then a status ``in_progress`` linking the run;
2. after it: ``success`` with ``environment_url`` (the domain URL, else the
   workspace URL), ``inactive`` when the run ended skipped (a preview another
   run took over) or superseded (a newer release serves the domain), or
   ``failure``.
Every deployment carries the payload ``{"codesphere-release": {"flow", "workspace",
"pr"}}`` (``pr`` for a preview; ``workspace`` is the name asked for, the
``workspace-name`` input or its default). Teardown marks ``inactive``, once the
workspace is gone, only the deployments of ``environment`` whose payload names
this pull request and this workspace name (or this workspace name, without a
pull request): never another pull request's, another app's, or production's.

A Deployments call that fails never fails the release: it becomes one
``::warning`` and the calls that depend on it are skipped.
"""

from __future__ import annotations

from typing import Any

from .config import Config
from .context import Result
from .github import Reporter, count
from .github_api import GitHubApi, GitHubError, message
from .timings import Deadline

MAX_DESCRIPTION = 140  # GitHub's limit for a status description
PAGE = 100  # GitHub's largest page
# Pages of an environment's deployments (newest first) teardown looks through for
# its pull request's: 1000 deployments, a busy shared environment's months.
MAX_DEPLOYMENT_PAGES = 10
PAYLOAD_KEY = "codesphere-release"
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
    def begin(self, deadline: Deadline) -> None:
        """Create the deployment and mark it ``in_progress`` (not for a flow whose
        spec deactivates instead: teardown)."""
        config = self.config
        if config.spec.deployment in ("deactivate", "none"):
            return
        if not config.deployment_ref:
            self._warn("creating a deployment", "no commit to deploy (GITHUB_SHA is not set)")
            return
        preview = config.spec.environment == "preview"
        body: dict[str, Any] = {
            "ref": config.deployment_ref,
            "environment": config.github.environment,
            "auto_merge": False,
            "required_contexts": [],
            "description": _short(f"Codesphere {config.flow} flow"),
        }
        if preview:
            body["transient_environment"] = True
            body["production_environment"] = False
        body["payload"] = {PAYLOAD_KEY: self._identity()}
        try:
            self.deployment_id = self._create(body, deadline)
            self._status("in_progress", f"Codesphere {config.flow} flow running", deadline=deadline)
        except GitHubError as exc:
            self._warn(
                f"creating a deployment for environment {config.github.environment}", str(exc)
            )
            return
        self.reporter.info(
            f"GitHub deployment {self.deployment_id} (environment {config.github.environment}): "
            "in progress"
        )

    def finish(self, result: Result, deadline: Deadline) -> None:
        """Report the run's end: ``success`` with the URL or ``failure``; for
        teardown, mark the environment's deployments ``inactive``. Never raises."""
        try:
            if self.config.spec.deployment == "deactivate":
                if result.status == "success":
                    self._deactivate(deadline)
                return
            if self.deployment_id is None:
                return
            what, done = self.config.spec.noun, self.config.spec.done
            if result.status == "success":
                url = result.outputs["domain-url"] or result.outputs["workspace-url"]
                self._status("success", f"{done}: {url}" if url else done, url, deadline=deadline)
            elif result.status in ("skipped", "superseded"):
                # Nothing this run built is live (another run took the preview over,
                # the pull request closed meanwhile, a newer release serves the
                # domain): nothing failed either.
                self._status("inactive", f"{what} {result.status}", deadline=deadline)
            else:
                self._status("failure", f"{what} {result.status}", deadline=deadline)
            self.reporter.info(f"GitHub deployment {self.deployment_id}: {result.status}")
        except GitHubError as exc:
            self._warn(f"updating deployment {self.deployment_id}", str(exc))
        except Exception as exc:  # noqa: BLE001 (never fail a release over its bookkeeping)
            self._warn("the Deployments update", f"unexpected {type(exc).__name__}: {exc}")

    # -- calls ---------------------------------------------------------------
    def _create(self, body: dict[str, Any], deadline: Deadline) -> int:
        created = self._call_api("POST", "/deployments", body, deadline=deadline)
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise GitHubError(f"GitHub created no deployment: {message(created)}")
        return int(created["id"])

    def _status(
        self,
        state: str,
        description: str,
        environment_url: str = "",
        *,
        deadline: Deadline,
    ) -> None:
        body: dict[str, Any] = {"state": state, "description": _short(description)}
        if self.config.run.url:
            body["log_url"] = self.config.run.url
        if environment_url:
            body["environment_url"] = environment_url
        path = f"/deployments/{self.deployment_id}/statuses"
        self._call_api("POST", path, body, deadline=deadline)

    def _identity(self) -> dict[str, Any]:
        """What the payload of a deployment of this run says about it."""
        config = self.config
        identity: dict[str, Any] = {"flow": config.flow, "workspace": config.workspace_name}
        if config.spec.creates and config.pull_request is not None:
            identity["pr"] = config.pull_request.number
        return identity

    def _is_own(self, deployment: Any) -> bool:
        """Whether a listed deployment is one a preview of this pull request (and
        this workspace name) made: its payload says so."""
        payload = deployment.get("payload") if isinstance(deployment, dict) else None
        mark = payload.get(PAYLOAD_KEY) if isinstance(payload, dict) else None
        if not isinstance(mark, dict) or mark.get("flow") != "preview":
            return False
        if mark.get("workspace") != self.config.workspace_name:
            return False
        pull = self.config.pull_request
        return pull is None or mark.get("pr") == pull.number

    def _deactivate(self, deadline: Deadline) -> None:
        environment = self.config.github.environment
        if not environment:
            self.reporter.info(
                "No environment to deactivate (no pull request, no 'deployment-environment')"
            )
            return
        found: list[int] = []
        page, last = 1, 1
        while page <= min(last, MAX_DEPLOYMENT_PAGES):
            listed, links = self.api.list_page(
                "/deployments",
                {"environment": environment, "per_page": str(PAGE), "page": str(page)},
                deadline=deadline,
                hints=HINTS,
            )
            found += [d["id"] for d in listed if self._is_own(d) and isinstance(d.get("id"), int)]
            last = links.get("last", page if "next" not in links else page + 1)
            page += 1
        for deployment_id in found:
            self._call_api(
                "POST",
                f"/deployments/{deployment_id}/statuses",
                {"state": "inactive", "description": "Preview workspace deleted"},
                deadline=deadline,
            )
        pull = self.config.pull_request
        whose = f"pull request #{pull.number} ({self.config.workspace_name})" if pull else ""
        self.reporter.info(
            f"GitHub environment {environment}: marked {count(len(found), 'deployment')} of "
            f"{whose or self.config.workspace_name} inactive"
        )

    def _call_api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        deadline: Deadline,
    ) -> Any:
        return self.api.call(method, path, body, params=params, deadline=deadline, hints=HINTS)

    def _warn(self, what: str, why: str) -> None:
        self.reporter.warning(
            f"GitHub Deployments: {what} failed: {why}. The release itself is not affected",
            title="GitHub Deployments",
        )


def _short(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
