"""GitHub Deployments for a run, when the ``github-token`` input is set (off by default).

What Codesphere's own action does for previews, for every flow but teardown:
1. before the flow: ``POST /repos/{owner}/{repo}/deployments`` for the ref
   (the pull request's head for a preview, else GITHUB_SHA) and ``environment``
   (transient for previews), then a status ``in_progress`` linking the run;
2. after it: ``success`` with ``environment_url`` (the domain URL, else the
   workspace URL), or ``failure``.
Teardown marks the environment's deployments ``inactive`` once the workspace
is gone.

A Deployments call that fails never fails the release: it becomes one
``::warning`` and the calls that depend on it are skipped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from .client import USER_AGENT, BearerAuth
from .config import Config
from .context import Result
from .github import Reporter
from .summary import flow_words

API_VERSION = "2022-11-28"
TIMEOUT = (5.0, 10.0)  # connect, read
QUICK_TIMEOUT = (2.0, 3.0)  # after a cancellation the runner allows ~10 s in all
MAX_DESCRIPTION = 140  # GitHub's limit for a status description
MAX_DEACTIVATE = 100  # one page of deployments is plenty for one preview environment
HINTS = {
    401: "check the github-token input: the token is wrong or expired",
    403: "give the job `permissions: deployments: write`",
    404: "the token cannot see the repository, or the job lacks `permissions: deployments: write`",
}


class DeploymentsError(Exception):
    """A Deployments call failed; reported as a warning, never raised past this module."""


class Deployments:
    def __init__(
        self, config: Config, reporter: Reporter, *, session: requests.Session | None = None
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._auth = BearerAuth(config.github_token)
        self.repo_url = f"{config.github_api_url}/repos/{config.repository}"
        self.deployment_id: int | None = None

    def close(self) -> None:
        self.session.close()

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
        except DeploymentsError as exc:
            self._warn(f"creating a deployment for environment {config.environment}", str(exc))
            return
        self.reporter.info(
            f"GitHub deployment {self.deployment_id} (environment {config.environment}): "
            "in progress"
        )

    def finish(self, result: Result, seconds_left: float | None = None) -> None:
        """Report the run's end: ``success`` with the URL or ``failure``; for
        teardown, mark the environment's deployments ``inactive``. Never raises.
        ``seconds_left``: what remains of the cancel budget, if the run was cancelled."""
        timeout = TIMEOUT
        if seconds_left is not None:
            if seconds_left < 0.2:
                self._warn("updating the deployment", "no time left after the cancellation")
                self.close()
                return
            timeout = (min(QUICK_TIMEOUT[0], seconds_left), min(QUICK_TIMEOUT[1], seconds_left))
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
            else:
                self._status("failure", f"{what} {result.status}", timeout=timeout)
            self.reporter.info(f"GitHub deployment {self.deployment_id}: {result.status}")
        except DeploymentsError as exc:
            self._warn(f"updating deployment {self.deployment_id}", str(exc))
        except Exception as exc:  # noqa: BLE001 (never fail a release over its bookkeeping)
            self._warn("the Deployments update", f"unexpected {type(exc).__name__}: {exc}")
        finally:
            self.close()

    # -- calls ---------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> int:
        created = self._call("POST", "/deployments", body)
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise DeploymentsError(f"GitHub created no deployment: {_message(created)}")
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
        self._call("POST", f"/deployments/{self.deployment_id}/statuses", body, timeout=timeout)

    def _deactivate(self, timeout: tuple[float, float]) -> None:
        environment = self.config.environment
        if not environment:
            self.reporter.info("No environment to deactivate (no pull request, no 'environment')")
            return
        listed = self._call(
            "GET",
            "/deployments",
            params={"environment": environment, "per_page": str(MAX_DEACTIVATE)},
            timeout=timeout,
        )
        found = [d["id"] for d in listed or [] if isinstance(d, dict) and "id" in d]
        for deployment_id in found:
            self._call(
                "POST",
                f"/deployments/{deployment_id}/statuses",
                {"state": "inactive", "description": "Preview workspace deleted"},
                timeout=timeout,
            )
        self.reporter.info(
            f"GitHub environment {environment}: {len(found)} deployment(s) marked inactive"
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> Any:
        """One request; its decoded JSON. Raises DeploymentsError for anything
        but a 2xx answer (redirects are not followed: the token stays put)."""
        try:
            response = self.session.request(
                method,
                self.repo_url + path,
                json=body,
                params=params,
                headers={
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": API_VERSION,
                },
                auth=self._auth,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            host = urlsplit(self.repo_url).netloc
            raise DeploymentsError(
                f"{method} {path}: {type(exc).__name__} talking to {host}"
            ) from None
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if not 200 <= response.status_code < 300:
            hint = HINTS.get(response.status_code, "")
            raise DeploymentsError(
                f"{method} {path} answered {response.status_code} ({_message(payload)})"
                + (f": {hint}" if hint else "")
            )
        return payload

    def _warn(self, what: str, why: str) -> None:
        self.reporter.warning(
            f"GitHub Deployments: {what} failed: {why}. The release itself is not affected",
            title="GitHub Deployments",
        )


def _message(payload: Any) -> str:
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:200]
    return "no message"


def _short(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
