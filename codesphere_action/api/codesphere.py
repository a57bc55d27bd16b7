"""The parts of Codesphere's public API a release needs: one typed method per
endpoint, each taking the ``Deadline`` it serves (a required argument: the
type checker finds a call without one).

Every answer with a body is parsed into a typed result (``models.py``) at this
boundary: HTML from a login page or a proxy, or JSON of the wrong shape, is a
``BadAnswer``, never an empty result. Error statuses become ``ApiError``s of
the subclass that says what they mean (``Rejected``, ``NotFound``,
``MayHaveLanded``; see ``api/answers.py``). Sending, retrying and time are
the transport's (``api/transport.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import BadAnswer, NotFound
from ..models import (
    BaseImage,
    CreateWorkspace,
    DomainInfo,
    DomainMap,
    EnvVar,
    StageEntry,
    Workspace,
    parse_revisions,
)
from ..timings import CREATE_READ_SECONDS, PULL_READ_SECONDS, START_READ_SECONDS, Deadline
from .answers import Expect, decode, error_of
from .logstream import LogStream, open_stream
from .transport import Transport

T = TypeVar("T")


class Codesphere:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.base_url = transport.base_url
        self.reporter = transport.reporter
        self.clock = transport.clock

    def close(self) -> None:
        self.transport.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        idempotent: bool,
        body: Any = None,
        expect: Expect = "json",
        read_timeout: float | None = None,
        retries: bool = True,
    ) -> Any:
        """Send one API call; return its decoded JSON (None when ``expect`` is "none").
        Raises ApiError for an error status, TransportError when no answer came,
        BadAnswer when the answer is not Codesphere's JSON, RedirectRefused for a
        redirect out of the token's scope. ``retries`` False: one attempt."""
        response = self.transport.call(
            method,
            path,
            deadline=deadline,
            idempotent=idempotent,
            body=body,
            read_timeout=read_timeout,
            retries=retries,
        )
        if response.status_code >= 400:
            raise error_of(self.base_url, self.reporter, method, path, response)
        return decode(self.base_url, method, path, response, expect)

    def _get(self, path: str, parse: Callable[[Any], T], deadline: Deadline) -> T:
        return self._parse(
            "GET", path, parse, self._request("GET", path, deadline=deadline, idempotent=True)
        )

    def _parse(self, method: str, path: str, parse: Callable[[Any], T], value: Any) -> T:
        try:
            return parse(value)
        except BadAnswer as exc:
            raise BadAnswer(
                f"the API at {self.base_url} answered {method} {path} with JSON of an "
                f"unexpected shape ({exc}): check the api-url input"
            ) from None

    # -- workspaces ------------------------------------------------------------
    def get_workspace(self, workspace_id: int, *, deadline: Deadline) -> Workspace:
        return self._get(f"/workspaces/{workspace_id}", Workspace.parse, deadline)

    def is_running(self, workspace_id: int, *, deadline: Deadline) -> bool:
        path = f"/workspaces/{workspace_id}/status"
        return self._get(path, lambda a: _field(a, "isRunning", bool), deadline)

    def set_replicas(self, workspace_id: int, replicas: int, *, deadline: Deadline) -> None:
        # An absolute value: repeating it is harmless, so it counts as idempotent.
        self._request(
            "PATCH",
            f"/workspaces/{workspace_id}",
            body={"replicas": replicas},
            idempotent=True,
            expect="none",
            deadline=deadline,
        )

    def list_team_workspaces(self, team_id: int, *, deadline: Deadline) -> list[Workspace]:
        return self._get(f"/workspaces/team/{team_id}", Workspace.parse_list, deadline)

    def create_workspace(self, body: CreateWorkspace, *, deadline: Deadline) -> Workspace:
        """Create; awaited up to ``CREATE_READ_SECONDS`` (within ``deadline``), never
        repeated here: a create whose outcome is unknown is the caller's to look for."""
        answer = self._request(
            "POST",
            "/workspaces",
            body=body.to_json(),
            idempotent=False,
            deadline=deadline,
            read_timeout=CREATE_READ_SECONDS,
        )
        return self._parse("POST", "/workspaces", Workspace.parse, answer)

    def delete_workspace(self, workspace_id: int, *, deadline: Deadline) -> bool:
        """Delete; return False when it was already gone (404)."""
        try:
            self._request(
                "DELETE",
                f"/workspaces/{workspace_id}",
                idempotent=True,
                expect="none",
                deadline=deadline,
            )
        except NotFound:
            return False
        return True

    def exists(self, workspace_id: int, *, deadline: Deadline) -> bool:
        """Whether the workspace exists (a 404 says it does not)."""
        try:
            self.get_workspace(workspace_id, deadline=deadline)
        except NotFound:
            return False
        return True

    def list_env_vars(
        self, workspace_id: int, *, deadline: Deadline, read_timeout: float | None = None
    ) -> list[EnvVar]:
        path = f"/workspaces/{workspace_id}/env-vars"
        answer = self._request(
            "GET", path, idempotent=True, deadline=deadline, read_timeout=read_timeout
        )
        return self._parse("GET", path, EnvVar.parse_list, answer)

    def set_env_vars(
        self,
        workspace_id: int,
        variables: list[EnvVar],
        *,
        deadline: Deadline,
        read_timeout: float | None = None,
    ) -> None:
        self._request(
            "PUT",
            f"/workspaces/{workspace_id}/env-vars",
            body=[{"name": v.name, "value": v.value} for v in variables],
            idempotent=True,
            expect="none",
            deadline=deadline,
            read_timeout=read_timeout,
        )

    def list_base_images(self, *, deadline: Deadline) -> list[BaseImage]:
        return self._get("/metadata/workspace-base-images", BaseImage.parse_list, deadline)

    # -- vault -----------------------------------------------------------------
    def store_workspace_secrets(
        self, team_id: int, workspace_id: int, secrets: dict[str, str], *, deadline: Deadline
    ) -> dict[str, str]:
        """Store secrets in the workspace's vault (an upsert of the given names:
        repeating it stores the same values again, so it counts as idempotent);
        return each name's revision. Values are never read back."""
        path = f"/vault/teams/{team_id}/workspaces/{workspace_id}"
        answer = self._request("POST", path, body=secrets, idempotent=True, deadline=deadline)
        return self._parse("POST", path, parse_revisions, answer)

    # -- git -----------------------------------------------------------------
    def git_pull(self, workspace_id: int, remote: str, branch: str, *, deadline: Deadline) -> None:
        """Pull. The API answers when the pull is done, which for a big repository
        takes a while: its answer is awaited up to ``PULL_READ_SECONDS`` (within
        ``deadline``), never sent again while the first may still run."""
        path = f"/workspaces/{workspace_id}/git/pull/{quote(remote, safe='')}"
        if branch:
            path += f"/{quote(branch, safe='')}"
        self._request(
            "POST",
            path,
            idempotent=False,
            expect="none",
            deadline=deadline,
            read_timeout=PULL_READ_SECONDS,
        )

    def git_head(self, workspace_id: int, *, deadline: Deadline) -> str:
        path = f"/workspaces/{workspace_id}/git/head"
        return self._get(path, lambda a: _field(a, "head", str), deadline)

    # -- pipeline and landscape ------------------------------------------------
    def start_stage(
        self, workspace_id: int, stage: str, profile: str = "", *, deadline: Deadline
    ) -> None:
        path = f"/workspaces/{workspace_id}/pipeline/{stage}/start"
        if profile:
            path += f"/{quote(profile, safe='')}"
        # Awaited rather than repeated: a start sent twice replaces the first run.
        self._request(
            "POST",
            path,
            idempotent=False,
            expect="none",
            deadline=deadline,
            read_timeout=START_READ_SECONDS,
        )

    def stop_stage(self, workspace_id: int, stage: str, *, deadline: Deadline) -> None:
        # Stopping twice leaves the same state: safe to repeat.
        self._request(
            "POST",
            f"/workspaces/{workspace_id}/pipeline/{stage}/stop",
            idempotent=True,
            expect="none",
            deadline=deadline,
        )

    def deploy_landscape(self, workspace_id: int, profile: str = "", *, deadline: Deadline) -> None:
        # Syncs the servers to ci.yml: deploying the same config twice is harmless.
        path = f"/workspaces/{workspace_id}/landscape/deploy"
        if profile:
            path += f"/{quote(profile, safe='')}"
        self._request("POST", path, idempotent=True, expect="none", deadline=deadline)

    def stage_status(
        self, workspace_id: int, stage: str, *, deadline: Deadline
    ) -> list[StageEntry]:
        path = f"/workspaces/{workspace_id}/pipeline/{stage}"
        return self._get(path, StageEntry.parse_list, deadline)

    def open_log_stream(
        self,
        workspace_id: int,
        stage: str,
        step: int,
        *,
        idle_timeout: float,
        deadline: Deadline,
        server: str = "",
        replica: str = "",
        abort: Callable[[Callable[[], None]], None] | None = None,
    ) -> LogStream:
        """Open the SSE log of one step; for the run stage of a multi-server
        workspace, of one ``replica`` (its id from the status) or else of one
        ``server`` (all its replicas); see ``api/logstream.py``."""
        path = f"/workspaces/{workspace_id}/logs/{stage}/{step}"
        if replica:
            path += f"/replica/{quote(replica, safe='')}"
        elif server:
            path += f"/server/{quote(server, safe='')}"
        return open_stream(
            self.transport, path, idle_timeout=idle_timeout, deadline=deadline, abort=abort
        )

    # -- domains -------------------------------------------------------------
    def get_domain(
        self,
        team_id: int,
        domain: str,
        *,
        deadline: Deadline,
        read_timeout: float | None = None,
        retries: bool = True,
    ) -> DomainInfo:
        """The domain and its map; ``retries`` False: one attempt (the bake's
        reads, which the next round repeats)."""
        path = f"/domains/team/{team_id}/domain/{quote(domain, safe='')}"
        answer = self._request(
            "GET",
            path,
            idempotent=True,
            deadline=deadline,
            read_timeout=read_timeout,
            retries=retries,
        )
        return self._parse("GET", path, DomainInfo.parse, answer)

    def list_domains(self, team_id: int, *, deadline: Deadline) -> list[DomainInfo]:
        return self._get(f"/domains/team/{team_id}", DomainInfo.parse_list, deadline)

    def set_domain_connections(
        self,
        team_id: int,
        domain: str,
        connections: DomainMap,
        *,
        deadline: Deadline,
        read_timeout: float | None = None,
    ) -> DomainInfo:
        # PUT replaces the whole map: repeating it with the same map is harmless.
        path = f"/domains/team/{team_id}/domain/{quote(domain, safe='')}/workspace-connections"
        answer = self._request(
            "PUT",
            path,
            body=connections.to_json(),
            idempotent=True,
            deadline=deadline,
            read_timeout=read_timeout,
        )
        return self._parse("PUT", path, DomainInfo.parse, answer)


def _field(answer: Any, key: str, kind: type[T]) -> T:
    """``answer[key]``, which must be a ``kind``; BadAnswer otherwise."""
    value = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(value, kind):
        raise BadAnswer(f"expected an object with {key}, got {str(answer)[:80]!r}")
    return value
