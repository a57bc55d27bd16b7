"""Emulator state: workspaces, stage runs (a pure function of the clock), domains, records.

Nothing here runs on its own: every state (stage progress, a workspace coming up) is
computed from the times recorded when the request arrived, so a status poll, a log stream
and the events timeline all agree to the millisecond.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

STAGES = ("prepare", "test", "run")
IDE_SERVER = "codesphere-ide"
DEFAULT_ERROR_LINES = ("npm ERR! missing script: build",)

Clock = Callable[[], float]
LogLine = str | tuple[str, str]  # "text" (kind I) or ("E" | "I", "text")


class Event(NamedTuple):
    """One entry of ``Emulator.events``: ``(time, kind, details)``; ``time`` is monotonic."""

    time: float
    kind: str
    details: dict[str, Any]


class Headers(dict[str, str]):
    """Request headers: keys stored lower-case, looked up case-insensitively."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """A request as it reached a listener.

    ``path`` is the spec-relative path WITHOUT the ``/api`` prefix and without the query,
    still percent-encoded (``/workspaces/7/pipeline/prepare/start``); ``raw_path`` is the
    request target exactly as sent (``/api/workspaces/7/...?x=1``).
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: Headers
    body: Any
    raw_body: bytes
    time: float
    port: int
    listener: str  # "primary" | "second" | "foreign"
    status: int | None = None  # None when the connection was dropped or is still being handled
    fault: str | None = None
    reserved_id: int | None = None  # variant id_order="arrival": the id a create got on arrival
    route: str | None = None  # spec path template, e.g. "/workspaces/{workspaceId}"
    operation_id: str | None = None
    trace_id: str | None = None  # of the problem answer, if any
    violations: list[str] = field(default_factory=list)


@dataclass
class StageConfig:
    """How the next start of a stage behaves (copied into the run at start)."""

    seconds: float
    steps: int = 2
    fail_step: int | None = None
    logs: dict[int, list[LogLine]] = field(default_factory=dict)
    error_lines: list[str] = field(default_factory=lambda: list(DEFAULT_ERROR_LINES))
    start_latency: float | None = None  # None: the emulator's start_latency
    # With fail_step: only these (server, replica index) entries fail; None: all of them.
    fail_entries: list[tuple[str, int]] | None = None
    # run: the servers exit (code 0) at the end of the last step instead of staying up.
    exits: bool = False

    def copy(self) -> StageConfig:
        return StageConfig(
            seconds=self.seconds,
            steps=self.steps,
            fail_step=self.fail_step,
            logs={k: list(v) for k, v in self.logs.items()},
            error_lines=list(self.error_lines),
            start_latency=self.start_latency,
            fail_entries=None if self.fail_entries is None else list(self.fail_entries),
            exits=self.exits,
        )


def iso(wall: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``."""
    moment = _dt.datetime.fromtimestamp(wall, tz=_dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StageRun:
    """One start of a stage. Its whole life follows from the times below.

    ``start_at = requested_at + start latency``; step ``k`` runs during
    ``[start_at + k*d, start_at + (k+1)*d)`` with ``d = seconds / steps``.
    prepare/test end ``success`` after the last step, or ``failure`` at the end of
    ``fail_step``. run: steps before the last one succeed, the last one keeps running;
    the customer entries turn ``running`` at ``start_at + seconds`` (``up_at``) and never
    finish unless stopped, replaced or failed at ``fail_step``.
    """

    ws_id: int
    stage: str
    profile: str | None
    number: int
    requested_at: float
    start_at: float
    steps: int
    seconds: float
    fail_step: int | None
    entries: list[tuple[str, str]]  # (server, replica); codesphere-ide first
    logs: dict[int, list[LogLine]]
    error_lines: list[str]
    _now: Clock = field(repr=False)
    _wall_offset: float = field(repr=False, default=0.0)
    stopped_at: float | None = None  # when the stop takes effect (may lie in the future)
    stop_reason: str | None = None  # "stopped" | "workspace deleted" | "workspace stopped"
    superseded_at: float | None = None
    stop_requested_at: float | None = None  # when .../stop came in
    ide_runs: bool = False  # run stage of a run_on_ide workspace: codesphere-ide runs it
    # With fail_step: the (server, replica id) entries that fail; None: every active one.
    fail_entries: frozenset[tuple[str, str]] | None = None
    exits: bool = False  # run: the servers exit (success) after the last step

    @property
    def stays_up(self) -> bool:
        """A run stage whose last step keeps running (its servers serve)."""
        return self.stage == "run" and self.fail_step is None and not self.exits

    # -- timing ---------------------------------------------------------------------------
    @property
    def step_seconds(self) -> float:
        return self.seconds / self.steps if self.steps else 0.0

    def step_start(self, k: int) -> float:
        return self.start_at + k * self.step_seconds

    def step_natural_end(self, k: int) -> float | None:
        """When step k ends by itself; None if it never starts or never ends."""
        if self.fail_step is not None and k > self.fail_step:
            return None
        if self.stays_up and k == self.steps - 1:
            return None
        return self.start_at + (k + 1) * self.step_seconds

    @property
    def natural_end(self) -> float | None:
        if self.fail_step is not None:
            return self.start_at + (self.fail_step + 1) * self.step_seconds
        if self.stays_up:
            return None
        return self.start_at + self.seconds

    @property
    def natural_state(self) -> str:
        if self.fail_step is not None:
            return "failure"
        return "running" if self.stays_up else "success"

    @property
    def scheduled_up_at(self) -> float | None:
        if not self.stays_up:
            return None
        return self.start_at + self.seconds

    def _interruption(self) -> tuple[float, str] | None:
        found: list[tuple[float, str]] = []
        if self.stopped_at is not None:
            found.append((self.stopped_at, self.stop_reason or "stopped"))
        if self.superseded_at is not None:
            found.append((self.superseded_at, "replaced by a new start"))
        return min(found) if found else None

    def _end(self) -> tuple[float, str, str] | None:
        """(time, final state, reason) of the actual end, possibly in the future."""
        natural = self.natural_end
        cut = self._interruption()
        if natural is not None and (cut is None or natural <= cut[0]):
            return natural, self.natural_state, "finished"
        if cut is not None:
            return cut[0], "aborted", cut[1]
        return None

    # -- public view of the run (as of now) -------------------------------------------------
    @property
    def started_at(self) -> float | None:
        """Monotonic time the run actually started (after the start latency), if it did."""
        cut = self._interruption()
        if cut is not None and cut[0] <= self.start_at:
            return None
        return self.start_at if self.start_at <= self._now() else None

    @property
    def ended_at(self) -> float | None:
        """Monotonic time the run ended (success, failure or aborted), if it has."""
        end = self._end()
        return end[0] if end is not None and end[0] <= self._now() else None

    @property
    def final_state(self) -> str | None:
        end = self._end()
        return end[1] if end is not None and end[0] <= self._now() else None

    @property
    def up_at(self) -> float | None:
        """run stage: monotonic time every customer entry turned ``running``, if it did."""
        up = self.scheduled_up_at
        if up is None or up > self._now():
            return None
        cut = self._interruption()
        return up if cut is None or up < cut[0] else None

    # -- status JSON ----------------------------------------------------------------------
    def _active(self, server: str) -> bool:
        if self.stage == "run":
            return server != IDE_SERVER or self.ide_runs
        return server == IDE_SERVER

    def _wall(self, t: float) -> str:
        return iso(self._wall_offset + t)

    def view(
        self, t: float, *, ignore_supersede: bool = False, idle_empty: bool = False
    ) -> list[dict[str, Any]]:
        """The status entries as they are at monotonic time ``t``; ``idle_empty``: idle
        entries list no steps."""
        cut = self.stopped_at if self.stopped_at is not None and self.stopped_at <= t else None
        if not ignore_supersede and self.superseded_at is not None and self.superseded_at <= t:
            cut = self.superseded_at if cut is None else min(cut, self.superseded_at)
        active = self._active_view(t, cut)
        healthy: dict[str, Any] | None = None
        out = []
        for server, replica in self.entries:
            entry: dict[str, Any] = {"server": server, "replica": replica}
            if self._active(server):
                shown = active
                if self._spared(server, replica):
                    if healthy is None:
                        spared = dataclasses.replace(self, fail_step=None, fail_entries=None)
                        healthy = spared._active_view(t, cut)
                    shown = healthy
                entry.update(shown)
                entry["steps"] = [dict(s) for s in shown["steps"]]
            else:
                entry["state"] = "waiting"
                entry["steps"] = [
                    {"state": "waiting"} for _ in range(0 if idle_empty else self.steps)
                ]
            out.append(entry)
        return out

    def _spared(self, server: str, replica: str) -> bool:
        """A failing run that fails only some entries leaves this one healthy."""
        return (
            self.fail_step is not None
            and self.fail_entries is not None
            and (server, replica) not in self.fail_entries
        )

    def _step_view(self, k: int, t: float, cut: float | None) -> dict[str, Any]:
        start = self.step_start(k)
        end = self.step_natural_end(k)
        never = self.fail_step is not None and k > self.fail_step
        if never or t < start or (cut is not None and cut <= start):
            return {"state": "waiting"}
        if end is not None and t >= end and (cut is None or end <= cut):
            state = "failure" if k == self.fail_step else "success"
            return {"state": state, "startedAt": self._wall(start), "finishedAt": self._wall(end)}
        if cut is not None:
            return {
                "state": "aborted",
                "startedAt": self._wall(start),
                "finishedAt": self._wall(cut),
            }
        return {"state": "running", "startedAt": self._wall(start)}

    def _active_view(self, t: float, cut: float | None) -> dict[str, Any]:
        steps = [self._step_view(k, t, cut) for k in range(self.steps)]
        if cut is not None and cut <= self.start_at:
            return {"state": "aborted", "finishedAt": self._wall(cut), "steps": steps}
        if t < self.start_at:
            return {"state": "waiting", "steps": steps}
        entry: dict[str, Any] = {"state": None, "startedAt": self._wall(self.start_at)}
        natural = self.natural_end
        if natural is not None and t >= natural and (cut is None or natural <= cut):
            entry["state"] = self.natural_state
            entry["finishedAt"] = self._wall(natural)
        elif cut is not None:
            entry["state"] = "aborted"
            entry["finishedAt"] = self._wall(cut)
        elif self.stage == "run":
            up = self.scheduled_up_at
            entry["state"] = "running" if up is not None and t >= up else "waiting"
        else:
            entry["state"] = "running"
        entry["steps"] = steps
        return entry

    # -- logs -----------------------------------------------------------------------------
    def log_lines(
        self, k: int, server: str | None = None, replica: str | None = None
    ) -> list[tuple[float, str, str]]:
        """(time, kind, text) of step k, cut where the step was interrupted; sorted by time.
        ``server`` (and ``replica``): the run stage's log of that server (replica):
        its default lines name the server, and a failing step's error lines come
        only from entries that fail (a server: any of its replicas)."""
        if server is not None and self.fail_step is not None and self.fail_entries is not None:
            failing = {(s, r) for s, r in self.fail_entries if s == server}
            if replica is not None:
                failing = {(s, r) for s, r in failing if r == replica}
            if not failing:  # this server (replica) is healthy: its own lines
                healthy = dataclasses.replace(self, fail_step=None, fail_entries=None)
                return healthy.log_lines(k, server, replica)
        if k >= self.steps or (self.fail_step is not None and k > self.fail_step):
            return []
        start = self.step_start(k)
        spec = self.logs.get(k)
        if spec is None:
            spec = _default_logs(self, k, server)
        lines: list[tuple[float, str, str]] = []
        for i, line in enumerate(spec):
            kind, text = ("I", line) if isinstance(line, str) else line
            lines.append((start + self.step_seconds * i / max(len(spec), 1), kind, text))
        if k == self.fail_step:
            end = start + self.step_seconds
            lines += [(end, "E", text) for text in self.error_lines]
        cut = self._interruption()
        if cut is not None:
            lines = [line for line in lines if line[0] < cut[0]]
        return lines

    def step_stream_end(self, k: int) -> float | None:
        """When a log stream of step k ends: the step ends or it is clear it never runs."""
        candidates: list[float] = []
        cut = self._interruption()
        if cut is not None:
            candidates.append(cut[0])
        if self.fail_step is not None and k > self.fail_step:
            natural = self.natural_end
            if natural is not None:
                candidates.append(natural)
        else:
            end = self.step_natural_end(k)
            if end is not None:
                candidates.append(end)
        return min(candidates) if candidates else None

    # -- events ---------------------------------------------------------------------------
    def derived_events(self, now: float) -> list[Event]:
        base = {
            "workspace_id": self.ws_id,
            "stage": self.stage,
            "profile": self.profile,
            "run": self.number,
        }
        out: list[Event] = []
        started = self.started_at
        if started is not None:
            out.append(Event(started, "stage_started", dict(base)))
        up = self.up_at
        if up is not None:
            out.append(Event(up, "stage_up", {**base, "state": "running"}))
        end = self._end()
        if end is not None and end[0] <= now:
            out.append(
                Event(
                    end[0],
                    "stage_finished",
                    {**base, "state": end[1], "reason": end[2], "started": started is not None},
                )
            )
        return out


def _default_logs(run: StageRun, k: int, server: str | None) -> list[LogLine]:
    """Two lines of step ``k`` (0-based, as the API's routes count): they name it
    ``step {k + 1}``, as the status's "step 1 of 2" and the action's log groups do."""
    stage = run.stage
    where = f"[{stage} {server}] step {k + 1}" if server else f"[{stage}] step {k + 1}"
    if stage == "run" and k == run.steps - 1 and run.fail_step is None:
        if run.exits:
            return [f"{where}: starting server", f"{where}: exited with code 0"]
        return [f"{where}: starting server", f"{where}: listening on port 3000"]
    return [f"{where}: running", f"{where}: done"]


def never_ran_view(
    entries: list[tuple[str, str]], steps: int, *, idle_empty: bool = False
) -> list[dict[str, Any]]:
    return [
        {
            "server": server,
            "replica": replica,
            "state": "waiting",
            "steps": [] if idle_empty else [{"state": "waiting"} for _ in range(steps)],
        }
        for server, replica in entries
    ]


@dataclass
class LandscapeDeploy:
    """One ``POST .../landscape/deploy[/{profile}]`` that was accepted."""

    requested_at: float
    at: float  # when the servers are allocated
    profile: str | None
    servers: list[str]
    vault: dict[str, str] = field(default_factory=dict)  # ${{ vault.KEY }} -> what services got


@dataclass
class Workspace:
    """A workspace. Read its attributes in tests; change it through ``Emulator`` methods."""

    id: int
    team_id: int
    name: str
    plan_id: int
    is_private_repo: bool
    replicas: int
    git_url: str | None
    initial_branch: str | None
    branch: str
    git_head: str | None
    env: dict[str, str]
    dev_domain: str
    base_servers: list[str]  # single: the customer servers; multi: those allocated at creation
    stages: dict[str, StageConfig]
    profiles: set[str] | None  # None: every profile exists
    start_seconds: float
    created_at: float
    created_via: str  # "setup" (add_workspace) | "api" (POST /workspaces)
    data_center_id: int = 2
    user_id: int = 1
    base_image: str = "ubuntu-24.04"
    restricted: bool = False
    vpn_config: str | None = None
    welcome_message: str | None = None
    source_workspace_id: int | None = None
    clone_depth: int | None = None
    storage_mib: int | None = None
    shared_vault_name: str | None = None  # the team's shared vault it reads
    vault_refs: list[str] = field(default_factory=list)  # ci.yml's ${{ vault.KEY }} keys
    extra: dict[str, Any] = field(default_factory=dict)  # other create/patch fields, as sent
    running_since: float | None = None  # None: asleep; in the future: starting
    start_times: list[float] = field(default_factory=list)
    deleted: bool = False
    deleted_at: float | None = None
    runs: dict[str, list[StageRun]] = field(default_factory=dict)
    landscape: str = "single"  # "single" | "multi" | "run_on_ide"
    ci_servers: list[str] = field(default_factory=list)  # multi: what the next deploy allocates
    landscape_seconds: float = 0.2  # multi: deploy request -> servers allocated
    deploys: list[LandscapeDeploy] = field(default_factory=list)
    landscape_error: tuple[str, str | None] | None = None  # multi: deploys answer this 400
    pods: dict[tuple[str, int], str] = field(default_factory=dict)  # replica_ids="pod"
    _now: Clock = field(repr=False, default=lambda: 0.0)
    _wall_offset: float = field(repr=False, default=0.0)
    # Seconds before it was added that its createdAt says it was made (a workspace
    # an earlier release or version left behind weeks ago); 0 for the API's.
    age: float = 0.0

    @property
    def servers(self) -> list[str]:
        """The customer servers that exist now (multi: as the latest landed deploy left them)."""
        return self.servers_at(self._now())

    def servers_at(self, t: float) -> list[str]:
        """The customer servers that exist at monotonic time ``t``."""
        if self.landscape == "run_on_ide":
            return []
        current = self.base_servers
        if self.landscape == "multi":
            landed = [d for d in self.deploys if d.at <= t]
            if landed:
                current = max(landed, key=lambda d: d.at).servers
        return list(current)

    @property
    def running(self) -> bool:
        return (
            not self.deleted
            and self.running_since is not None
            and self._now() >= self.running_since
        )

    @property
    def starting(self) -> bool:
        return (
            not self.deleted and self.running_since is not None and self._now() < self.running_since
        )

    def stage_run(self, stage: str) -> StageRun | None:
        """The latest start of ``stage`` (possibly still inside its start latency)."""
        runs = self.runs.get(stage)
        return runs[-1] if runs else None

    def entries(self, *, pod_names: bool = False, at: float | None = None) -> list[tuple[str, str]]:
        """(server, replica id) of codesphere-ide and every customer server replica (as
        of ``at``, default now); the replica id is the index ("0", "1", ...) or, with
        ``pod_names``, the name in ``pods``."""

        def replica(server: str, index: int) -> str:
            return self.pods.get((server, index), str(index)) if pod_names else str(index)

        out = [(IDE_SERVER, replica(IDE_SERVER, 0))]
        for server in self.servers_at(self._now() if at is None else at):
            out += [(server, replica(server, r)) for r in range(self.replicas)]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "teamId": self.team_id,
            "name": self.name,
            "planId": self.plan_id,
            "isPrivateRepo": self.is_private_repo,
            "replicas": self.replicas,
            "id": self.id,
            "baseImage": self.base_image,
            "dataCenterId": self.data_center_id,
            "userId": self.user_id,
            "gitUrl": self.git_url,
            "initialBranch": self.initial_branch,
            "sourceWorkspaceId": self.source_workspace_id,
            "welcomeMessage": self.welcome_message,
            "vpnConfig": self.vpn_config,
            "restricted": self.restricted,
            "collectTraces": False,
            "persistentLogs": False,
            "devDomain": self.dev_domain,
            "createdAt": iso(self._wall_offset + self.created_at - self.age),
        }


@dataclass
class Domain:
    """A custom domain of a team; ``workspaces`` is the live path -> workspace ids map."""

    team_id: int
    name: str
    workspaces: dict[str, list[int]]
    data_center_id: int = 2
    history: list[tuple[float, dict[str, list[int]]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "teamId": self.team_id,
            "dataCenterId": self.data_center_id,
            "workspaces": {path: list(ids) for path, ids in self.workspaces.items()},
            "name": self.name,
            "certificateRequestStatus": {"issued": True, "reason": None},
            "dnsEntries": {
                "a": "46.4.80.1",
                "cname": f"team-{self.team_id}.codesphere.test",
                "txt": f"codesphere-verification={self.team_id}",
            },
            "domainVerificationStatus": {"verified": True, "reason": None},
            "customConfigRevision": len(self.history),
            "customConfig": {},
            "restricted": False,
        }


def copy_map(mapping: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    return {str(path): [int(i) for i in ids] for path, ids in mapping.items()}
