"""The Codesphere API emulator: state, endpoint handlers, faults, records."""

from __future__ import annotations

import dataclasses
import hashlib
import http
import json
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .apps import SIGN_IN_PATH, AppBehaviour, AppRequest, Apps, Route
from .faults import FaultBook, FaultRule
from .model import (
    IDE_SERVER,
    STAGES,
    Domain,
    Event,
    Headers,
    LandscapeDeploy,
    LogLine,
    RecordedRequest,
    StageConfig,
    StageRun,
    Workspace,
    copy_map,
    iso,
    never_ran_view,
)
from .server import Handler, Listener, Reply, SSEWriter, Stream
from .spec import Operation, load_spec
from .variants import Variants
from .vault import Secrets, VaultProblem, Vaults

_UNSET: Any = object()

DEFAULT_STAGE_SECONDS = {"prepare": 0.3, "test": 0.2, "run": 0.2}

NOT_RUNNING = "Workspace is not running"
NOT_FOUND = "Workspace is not found"
SCHEMA = "Path or request body variable does not match schema"
UNAUTHORIZED = "Authorization information is missing or invalid"
DOMAIN_NOT_FOUND = "Domain not found"
NO_MULTI_SERVER = "Workspace does not support Multi Server Deployments"
BILLING = "Missing billing information"
LANDSCAPES = ("single", "multi", "run_on_ide")
# GET /metadata/workspace-base-images: (id, name); a create with another baseImage: 400.
BASE_IMAGES = (("ubuntu-24.04", "Ubuntu 24.04"), ("ubuntu-22.04", "Ubuntu 22.04"))
WEBSITES = (None, "not_found", "spa")


def default_branch_head(branch: str) -> str:
    """The sha a branch points at unless ``set_branch_head`` said otherwise (40 hex)."""
    return hashlib.sha1(f"emulator:{branch}".encode()).hexdigest()


class Problem(Exception):
    """A problem answer; ``documented=False`` for statuses the spec lacks on purpose (402)."""

    def __init__(
        self, status: int, title: str, detail: str | None = None, *, documented: bool = True
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.documented = documented


class Emulator:
    """A local Codesphere API on ``127.0.0.1`` (random port), served from daemon threads.

    Use it as a context manager (or call ``close()``). See ``emulator/README.md``.
    """

    def __init__(
        self,
        *,
        token: str = "tok-123",
        host: str = "127.0.0.1",
        port: int = 0,
        workspace_start_seconds: float = 0.3,
        stage_seconds: Mapping[str, float] | None = None,
        steps: int = 2,
        start_latency: float = 0.1,
        seed: int | None = 0,
        servers: Iterable[str] = ("web",),
        log_stream_max_seconds: float = 60.0,
        check_domain_workspaces: bool = True,
        website: str | None = None,
        data_center_id: int = 2,
        first_workspace_id: int = 1001,
        foreign_host: str = "127.0.0.2",
        on_request: Callable[[RecordedRequest], None] | None = None,
        variants: Variants | None = None,
        landscape_seconds: float = 0.2,
    ) -> None:
        self.token = token
        self._variants = variants if variants is not None else Variants()
        self.workspace_start_seconds = workspace_start_seconds
        self.start_latency = start_latency
        self.log_stream_max_seconds = log_stream_max_seconds
        self.check_domain_workspaces = check_domain_workspaces
        if website not in WEBSITES:
            raise ValueError(f"website={website!r}; expected one of {WEBSITES}")
        # Paths outside /api (an api-url without it): None is a spec violation.
        self.website = website
        self.data_center_id = data_center_id
        self.on_request = on_request
        self.spec = load_spec()
        self._now: Callable[[], float] = time.monotonic
        self._wall_offset = time.time() - time.monotonic()
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._closed = False
        self._next_id = first_workspace_id
        self._processing = threading.local()  # what the request this thread processes reserved
        self._workspaces: dict[int, Workspace] = {}
        self._domains: dict[tuple[int, str], Domain] = {}
        self._branch_heads: dict[str, str | None] = {}
        self._remotes: set[str] = {"origin"}
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._response_violations: list[str] = []
        self._internal_errors: list[str] = []
        self._unemulated: list[str] = []
        self._events: list[Event] = []
        self._faults = FaultBook(seed)
        # Own generators, so a shuffled status or pod names never shift the fault draws.
        self._order_rng = random.Random(seed)
        self._pod_rng = random.Random(None if seed is None else seed + 1)
        self._map_rng = random.Random(None if seed is None else seed + 2)
        self._billing_blocked: set[int] = set()
        seconds = {**DEFAULT_STAGE_SECONDS, **(stage_seconds or {})}
        unknown = set(seconds) - set(STAGES)
        if unknown:
            raise ValueError(f"stage_seconds has unknown stages {sorted(unknown)}")
        self._defaults: dict[str, Any] = {
            "servers": list(servers),
            "profiles": None,
            "start_seconds": None,
            "dev_domain_template": "{id}-3000.dc{dc}.codesphere.test",
            "stages": {s: StageConfig(seconds=seconds[s], steps=steps) for s in STAGES},
            "landscape": "single",
            "ci_servers": None,  # None: the servers setting
            "landscape_seconds": landscape_seconds,
            "vault_refs": [],
        }
        self._vaults = Vaults()
        self.base_images: list[tuple[str, str]] = list(BASE_IMAGES)
        self._host = host
        self._foreign_host = foreign_host
        self._listeners: dict[str, Listener] = {}
        self._listeners["primary"] = Listener(self, "primary", host, port)
        self._apps: Apps | None = None
        self._app_defaults: dict[str, Any] | None = None
        # "127.0.0.1:<port>" of a served app -> the dev domain it stands in for
        self._app_names: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle ----------
    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down every listener; open streams and connections end at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners = list(self._listeners.values())
        self._closing.set()
        for listener in listeners:
            listener.stop()
        if self._apps is not None:
            self._apps.close()

    # ------------------------------------------------------------------ apps ---------------
    def serve_apps(self, **behaviour: Any) -> None:
        """Serve an app for every workspace created from now on (``AppBehaviour``
        keywords: ``ready_after``, ``statuses``, ``restricted``, ``body``); their
        dev domains become ``127.0.0.1:<port>``. See apps.py."""
        with self._lock:
            if self._apps is None:
                origin = self.url.removesuffix("/api")
                self._apps = Apps(
                    self.token,
                    self._now,
                    self._app_up_since,
                    self._route,
                    self._balancer,
                    origin + SIGN_IN_PATH,
                )
            self._app_defaults = {**(self._app_defaults or {}), **behaviour}

    def configure_app(self, ws_id: int, **changes: Any) -> None:
        """Change how one workspace's app answers (resets its answer count)."""
        assert self._apps is not None, "call serve_apps() first"
        self._apps.configure(ws_id, **changes)

    @property
    def app_requests(self) -> list[AppRequest]:
        """Every request an app or the domain proxy received, in order."""
        if self._apps is None:
            return []
        with self._apps.lock:
            return list(self._apps.requests)

    @property
    def app_names(self) -> dict[str, str]:
        """``127.0.0.1:<port>`` of each served app -> the dev domain it stands in
        for (the ``devDomain`` the workspace would have without ``serve_apps()``),
        for showing a log as a real run's would read (scripts/demo.py)."""
        with self._lock:
            return dict(self._app_names)

    @property
    def domain_proxy(self) -> str:
        """``127.0.0.1:<port>`` of the custom-domain proxy (serve_apps() first)."""
        assert self._apps is not None, "call serve_apps() first"
        return self._apps.proxy_address

    def _app_up_since(self, ws_id: int) -> float | None:
        with self._lock:
            ws = self._workspaces.get(ws_id)
            if ws is None or ws.deleted or not ws.running:
                return None
            run = ws.stage_run("run")
            return run.up_at if run is not None else None

    def _balancer(self) -> str:
        with self._lock:
            return self._variants.balancer

    def _route(self, host: str, path: str) -> Route | None:
        """Where a custom domain routes ``path`` (the longest matching key of its
        map): the route's name (domain and key), its workspaces in the map's
        order, and since when each has been on that list (None: since the domain
        was set up). None when no key matches or it lists no workspace."""
        with self._lock:
            for domain in self._domains.values():
                if domain.name.lower() != host:
                    continue
                key = _route_key(domain.workspaces, path)
                if key is None:
                    return None
                served = []
                for ws_id in domain.workspaces[key]:
                    since = None
                    for changed_at, before in reversed(domain.history):
                        earlier = _route_key(before, path)
                        if earlier is None or ws_id not in before[earlier]:
                            since = changed_at
                            break
                    served.append((ws_id, since))
                return Route(f"{domain.name}{key}", served)
        return None

    # ------------------------------------------------------------------ variants -----------
    @property
    def variants(self) -> Variants:
        """The behaviours in play where no document pins one down (see ``Variants``)."""
        with self._lock:
            return self._variants

    def set_variants(self, **changes: Any) -> Variants:
        """Change variants at run time (``emu.set_variants(log_end="cut")``); return them.

        Status answers follow at once; a log stream keeps the variants it was opened with.
        """
        unknown = set(changes) - set(Variants.names())
        if unknown:
            raise TypeError(f"unknown variants {sorted(unknown)}; expected {Variants.names()}")
        with self._lock:
            self._variants = dataclasses.replace(self._variants, **changes)
            return self._variants

    # ------------------------------------------------------------------ listeners ----------
    @property
    def url(self) -> str:
        """Base URL of the API, ``http://127.0.0.1:<port>/api``."""
        return self._listeners["primary"].base_url

    @property
    def port(self) -> int:
        return self._listeners["primary"].port

    def _listener(self, name: str) -> Listener:
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator is closed")
            if name not in self._listeners:
                host = self._foreign_host if name == "foreign" else self._host
                self._listeners[name] = Listener(self, name, host, 0)
            return self._listeners[name]

    @property
    def second_url(self) -> str:
        """Same host, other port, same state: ``http://127.0.0.1:<other port>/api``."""
        return self._listener("second").base_url

    @property
    def foreign_url(self) -> str:
        """A spy on another host (127.0.0.2) serving the same API; see ``foreign_requests``."""
        return self._listener("foreign").base_url

    # ------------------------------------------------------------------ records ------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request that reached any listener, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def foreign_requests(self) -> list[RecordedRequest]:
        """Requests that reached the foreign-host spy."""
        return [r for r in self.requests if r.listener == "foreign"]

    def find_requests(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        route: str | None = None,
        listener: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by method, ``path`` regex (fullmatch), route template."""
        out = []
        for rec in self.requests:
            if method is not None and rec.method != method.upper():
                continue
            if path is not None and not re.fullmatch(path, rec.path):
                continue
            if route is not None and rec.route != route:
                continue
            if listener is not None and rec.listener != listener:
                continue
            out.append(rec)
        return out

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def spec_violations(self) -> list[str]:
        """Requests that did not match the spec (unknown route, bad param, bad body)."""
        with self._lock:
            return list(self._violations)

    @property
    def response_violations(self) -> list[str]:
        """The emulator's own answers that did not match the spec (an emulator bug)."""
        with self._lock:
            return list(self._response_violations)

    @property
    def internal_errors(self) -> list[str]:
        """Exceptions inside handlers (answered 500; an emulator bug)."""
        with self._lock:
            return list(self._internal_errors)

    @property
    def unemulated(self) -> list[str]:
        """Calls to operations that are in the spec but not emulated (answered 501)."""
        with self._lock:
            return list(self._unemulated)

    def assert_clean(self) -> None:
        """Raise AssertionError listing spec violations, bad answers and emulator errors."""
        problems = (
            self.spec_violations + self.response_violations + self.internal_errors + self.unemulated
        )
        if problems:
            raise AssertionError("emulator saw problems:\n" + "\n".join(problems))

    @property
    def events(self) -> list[Event]:
        """The timeline ``(time, kind, details)``, sorted by monotonic time, up to now."""
        with self._lock:
            now = self._now()
            out = list(self._events)
            for ws in self._workspaces.values():
                for t in ws.start_times:
                    if t <= now and (ws.deleted_at is None or t < ws.deleted_at):
                        out.append(Event(t, "workspace_started", {"workspace_id": ws.id}))
                for deploy in ws.deploys:
                    if deploy.at <= now and (ws.deleted_at is None or deploy.at < ws.deleted_at):
                        details = {
                            "workspace_id": ws.id,
                            "profile": deploy.profile,
                            "servers": list(deploy.servers),
                        }
                        out.append(Event(deploy.at, "landscape_deployed", details))
                for runs in ws.runs.values():
                    for run in runs:
                        out += run.derived_events(now)
        return sorted(out, key=lambda e: e.time)

    def events_of(self, kind: str, **match: Any) -> list[Event]:
        """Events of one kind whose details contain ``match`` (e.g. ``stage="run"``)."""
        return [
            e
            for e in self.events
            if e.kind == kind and all(e.details.get(k) == v for k, v in match.items())
        ]

    def _event(self, kind: str, at: float | None = None, **details: Any) -> None:
        self._events.append(Event(self._now() if at is None else at, kind, details))

    # ------------------------------------------------------------------ faults -------------
    def add_fault(self, kind: str, **options: Any) -> FaultRule:
        """Inject a fault; see ``FaultRule`` for the options. Returns the rule (``.hits``)."""
        rule = FaultRule(kind=kind, **options)
        if rule.kind == "redirect" and rule.location is None and "://" not in rule.target:
            self._listener(rule.target)  # open it now so its port is known
        return self._faults.add(rule)

    @property
    def faults(self) -> list[FaultRule]:
        return list(self._faults.rules)

    @property
    def faults_injected(self) -> int:
        """How many faults fired so far, all rules together."""
        return self._faults.injected

    def clear_faults(self) -> None:
        for rule in self._faults.rules:
            rule.remove()

    # ------------------------------------------------------------------ workspaces ---------
    def _take_id(self) -> int:
        with self._lock:
            ws_id = self._next_id
            self._next_id += 1
            return ws_id

    def _new_workspace(self, team_id: int, name: str, via: str, **fields: Any) -> Workspace:
        reserved = getattr(self._processing, "reserved_id", None)
        ws_id = reserved if reserved is not None and via == "api" else self._take_id()
        defaults = self._defaults
        template = fields.pop("dev_domain_template", None) or defaults["dev_domain_template"]
        dev_domain = fields.pop("dev_domain", None) or template.format(
            id=ws_id, dc=self.data_center_id, team=team_id, name=name
        )
        if self._apps is not None and self._app_defaults is not None:
            # The workspace serves its app on a loopback port: that is its dev domain;
            # a workspace created restricted has a restricted dev domain.
            behaviour = dict(self._app_defaults)
            if fields.get("restricted"):
                behaviour["restricted"] = True
            named, dev_domain = dev_domain, self._apps.add(ws_id, AppBehaviour(**behaviour))
            with self._lock:
                self._app_names[dev_domain] = named
        start_seconds = fields.pop("start_seconds", None)
        if start_seconds is None:
            start_seconds = defaults["start_seconds"]
        if start_seconds is None:
            start_seconds = self.workspace_start_seconds
        servers = fields.pop("servers", None)
        servers = list(servers if servers is not None else defaults["servers"])
        profiles = fields.pop("profiles", _UNSET)
        landscape = fields.pop("landscape", None) or defaults["landscape"]
        if landscape not in LANDSCAPES:
            raise ValueError(f"landscape {landscape!r}; expected one of {LANDSCAPES}")
        ci_servers = fields.pop("ci_servers", None)
        if ci_servers is None:
            ci_servers = defaults["ci_servers"]
        ci_servers = list(ci_servers) if ci_servers is not None else list(servers)
        # A workspace made by the API has no service of its landscape until a deploy;
        # one made by add_workspace has been deployed before (unless told otherwise).
        deployed = fields.pop("landscape_deployed", via == "setup")
        if landscape == "multi":
            base_servers = list(ci_servers) if deployed else []
        elif landscape == "run_on_ide":
            base_servers = []
        else:
            base_servers = servers
        vault_refs = fields.pop("vault_refs", None)
        ws = Workspace(
            id=ws_id,
            team_id=team_id,
            name=name,
            dev_domain=dev_domain,
            vault_refs=list(defaults["vault_refs"] if vault_refs is None else vault_refs),
            base_servers=base_servers,
            landscape=landscape,
            ci_servers=ci_servers,
            landscape_seconds=defaults["landscape_seconds"],
            stages={s: c.copy() for s, c in defaults["stages"].items()},
            profiles=(
                (set(defaults["profiles"]) if defaults["profiles"] is not None else None)
                if profiles is _UNSET
                else (set(profiles) if profiles is not None else None)
            ),
            start_seconds=start_seconds,
            created_at=self._now(),
            created_via=via,
            data_center_id=self.data_center_id,
            _now=self._now,
            _wall_offset=self._wall_offset,
            **fields,
        )
        self._workspaces[ws_id] = ws
        self._event(
            "workspace_created",
            ws.created_at,
            workspace_id=ws_id,
            name=name,
            team_id=team_id,
            via=via,
        )
        return ws

    def add_workspace(
        self,
        team_id: int = 1,
        name: str = "demo-app",
        *,
        running: bool = True,
        replicas: int = 1,
        servers: Iterable[str] | None = None,
        branch: str = "main",
        git_url: str | None = "https://github.com/example/demo-app.git",
        env: Mapping[str, str] | None = None,
        plan_id: int = 8,
        is_private_repo: bool = True,
        dev_domain: str | None = None,
        profiles: Iterable[str] | None = _UNSET,
        start_seconds: float | None = None,
        landscape: str | None = None,
        ci_servers: Iterable[str] | None = None,
        landscape_deployed: bool = True,
        age: float = 0.0,
        source_workspace_id: int | None = None,
    ) -> int:
        """Create a workspace directly (no request recorded) and return its id.

        ``running=True``: up at once; ``running=False``: asleep until a PATCH with
        ``replicas`` (or ``wake()``) starts it. ``profiles``: the CI profiles that exist
        (``None``: any). ``landscape``: "single" (default), "multi" or "run_on_ide"; a
        multi-server one has its ``ci_servers`` (default: ``servers``) allocated already
        unless ``landscape_deployed=False``. ``age``: its ``createdAt`` says it was made
        that many seconds ago. ``source_workspace_id``: it was made as a copy of that
        workspace (its ``sourceWorkspaceId``; pass the copied ``env`` too).
        """
        with self._lock:
            head = self.branch_head(branch) if git_url else None
            ws = self._new_workspace(
                team_id,
                name,
                "setup",
                plan_id=plan_id,
                is_private_repo=is_private_repo,
                replicas=replicas,
                git_url=git_url,
                initial_branch=branch,
                branch=branch,
                git_head=head,
                env=dict(env or {}),
                servers=list(servers) if servers is not None else None,
                dev_domain=dev_domain,
                profiles=profiles,
                start_seconds=start_seconds,
                landscape=landscape,
                ci_servers=list(ci_servers) if ci_servers is not None else None,
                landscape_deployed=landscape_deployed,
                age=age,
                source_workspace_id=source_workspace_id,
            )
            if running:
                ws.running_since = ws.created_at
                ws.start_times.append(ws.created_at)
            return ws.id

    def workspace(self, ws_id: int) -> Workspace:
        """The live workspace object (deleted ones too). KeyError if it never existed."""
        with self._lock:
            return self._workspaces[ws_id]

    def workspaces(
        self, team_id: int | None = None, *, name: str | None = None, include_deleted: bool = False
    ) -> list[Workspace]:
        """Workspaces ordered by id, optionally of one team / with one name."""
        with self._lock:
            return [
                ws
                for ws in self._workspaces.values()
                if (team_id is None or ws.team_id == team_id)
                and (name is None or ws.name == name)
                and (include_deleted or not ws.deleted)
            ]

    def set_running(self, ws_id: int, running: bool) -> None:
        """Put a workspace up (at once) or to sleep; sleeping aborts its stage runs."""
        with self._lock:
            ws = self._workspaces[ws_id]
            now = self._now()
            if running:
                if not ws.running:
                    ws.running_since = now
                    ws.start_times.append(now)
            else:
                ws.running_since = None
                ws.start_times = [t for t in ws.start_times if t <= now]
                self._cut_runs(ws, "workspace stopped")
                self._event("workspace_stopped", workspace_id=ws_id)

    def wake(self, ws_id: int) -> None:
        """Start an asleep workspace; it runs after its ``start_seconds``."""
        with self._lock:
            self._wake(self._workspaces[ws_id])

    def _wake(self, ws: Workspace) -> None:
        if ws.running_since is not None:
            return
        ws.running_since = self._now() + ws.start_seconds
        ws.start_times.append(ws.running_since)
        self._event("workspace_waking", workspace_id=ws.id)

    def _cut_runs(self, ws: Workspace, reason: str) -> None:
        now = self._now()
        for runs in ws.runs.values():
            if runs:
                run = runs[-1]
                pending = run.stopped_at is None or run.stopped_at > now
                if pending and run.ended_at is None:
                    run.stopped_at = now
                    run.stop_reason = reason

    def defaults_for_new_workspaces(
        self,
        *,
        servers: Iterable[str] = _UNSET,
        profiles: Iterable[str] | None = _UNSET,
        start_seconds: float | None = _UNSET,
        dev_domain_template: str = _UNSET,
        stages: Mapping[str, Mapping[str, Any]] | None = None,
        landscape: str = _UNSET,
        ci_servers: Iterable[str] | None = _UNSET,
        landscape_seconds: float = _UNSET,
        vault_refs: Iterable[str] = _UNSET,
    ) -> None:
        """Settings for workspaces created from now on (``add_workspace`` and the API).

        ``stages`` maps a stage to ``configure_stage`` keywords, e.g.
        ``{"prepare": {"fail_step": 1}}``. ``dev_domain_template`` may use ``{id}``,
        ``{dc}``, ``{team}``, ``{name}``. ``landscape``: "single" | "multi" | "run_on_ide";
        ``ci_servers``: what ci.yml's run section defines (None: ``servers``);
        ``landscape_seconds``: deploy request -> servers allocated; ``vault_refs``:
        the keys ci.yml references as ``${{ vault.KEY }}`` (see vault.py).
        """
        with self._lock:
            if vault_refs is not _UNSET:
                self._defaults["vault_refs"] = list(vault_refs)
            if landscape is not _UNSET:
                if landscape not in LANDSCAPES:
                    raise ValueError(f"landscape {landscape!r}; expected one of {LANDSCAPES}")
                self._defaults["landscape"] = landscape
            if ci_servers is not _UNSET:
                self._defaults["ci_servers"] = None if ci_servers is None else list(ci_servers)
            if landscape_seconds is not _UNSET:
                self._defaults["landscape_seconds"] = landscape_seconds
            if servers is not _UNSET:
                self._defaults["servers"] = list(servers)
            if profiles is not _UNSET:
                self._defaults["profiles"] = None if profiles is None else set(profiles)
            if start_seconds is not _UNSET:
                self._defaults["start_seconds"] = start_seconds
            if dev_domain_template is not _UNSET:
                self._defaults["dev_domain_template"] = dev_domain_template
            for stage, options in (stages or {}).items():
                _configure(self._defaults["stages"], stage, **options)

    def configure_stage(
        self,
        ws_id: int,
        stage: str,
        *,
        seconds: float = _UNSET,
        steps: int = _UNSET,
        fail_step: int | None = _UNSET,
        logs: Mapping[int, list[LogLine]] = _UNSET,
        error_lines: str | Iterable[str] = _UNSET,
        start_latency: float | None = _UNSET,
        fail_entries: Iterable[tuple[str, int]] | None = _UNSET,
        exits: bool = _UNSET,
    ) -> None:
        """How the NEXT start of ``stage`` on this workspace behaves (until changed again).

        ``fail_step=k`` fails step k (later steps stay waiting; ``None`` clears it);
        ``fail_entries=[("web", 1)]`` makes only those (server, replica index) entries fail
        (None: all); ``logs={k: ["line", ("E", "error line")]}``; ``error_lines`` are
        logged as kind E at the end of the failing step; ``start_latency`` overrides the
        emulator's; ``exits`` (run): the servers exit with code 0 after the last step.
        """
        with self._lock:
            _configure(
                self._workspaces[ws_id].stages,
                stage,
                seconds=seconds,
                steps=steps,
                fail_step=fail_step,
                logs=logs,
                error_lines=error_lines,
                start_latency=start_latency,
                fail_entries=fail_entries,
                exits=exits,
            )

    def set_ci_servers(self, ws_id: int, servers: Iterable[str]) -> None:
        """What ci.yml's run section defines from now on (a pull that changed ci.yml): the
        NEXT landscape deploy of this multi-server workspace allocates these servers."""
        with self._lock:
            self._workspaces[ws_id].ci_servers = list(servers)

    def set_landscape_error(self, ws_id: int, title: str | None, detail: str | None = None) -> None:
        """Landscape deploys of this workspace answer 400 with this problem from now on
        (e.g. "Invalid templating reference"); ``title=None`` clears it."""
        with self._lock:
            ws = self._workspaces[ws_id]
            ws.landscape_error = None if title is None else (title, detail)

    def add_shared_vault(
        self, team_id: int, name: str, secrets: Mapping[str, str] | None = None
    ) -> None:
        """A team's shared vault (what a create's ``sharedVaultName`` names)."""
        with self._lock:
            vault = self._vaults.shared.setdefault((team_id, name), Secrets())
            vault.store(dict(secrets or {}), self._wall_offset + self._now())

    def vault(self, ws_id: int) -> dict[str, str]:
        """The secrets in a workspace's vault (a copy; the API never returns values)."""
        with self._lock:
            found = self._vaults.workspaces.get(ws_id)
            return dict(found.values) if found is not None else {}

    def set_vault_refs(self, ws_id: int, keys: Iterable[str]) -> None:
        """The keys this workspace's ci.yml references as ``${{ vault.KEY }}``."""
        with self._lock:
            self._workspaces[ws_id].vault_refs = list(keys)

    def set_billing(self, team_id: int, *, ok: bool) -> None:
        """``ok=False``: ``POST /workspaces`` for this team answers 402 "Missing billing
        information" (not in the spec; not counted as a response violation)."""
        with self._lock:
            if ok:
                self._billing_blocked.discard(team_id)
            else:
                self._billing_blocked.add(team_id)

    def set_profiles(self, ws_id: int, profiles: Iterable[str] | None) -> None:
        """Which CI profiles exist (``ci.<profile>.yml``); ``None``: any. Others answer 400."""
        with self._lock:
            self._workspaces[ws_id].profiles = None if profiles is None else set(profiles)

    def set_branch_head(self, branch: str, sha: str | None) -> None:
        """Point a branch at ``sha`` for later pulls/creates; ``None`` deletes the branch."""
        with self._lock:
            self._branch_heads[branch] = sha

    def branch_head(self, branch: str) -> str | None:
        with self._lock:
            if branch in self._branch_heads:
                return self._branch_heads[branch]
            return default_branch_head(branch)

    def stage_run(self, ws_id: int, stage: str) -> StageRun | None:
        """The latest start of a stage (``.profile .requested_at .started_at .ended_at
        .up_at .final_state``), or None."""
        with self._lock:
            return self._workspaces[ws_id].stage_run(stage)

    def stage_runs(self, ws_id: int, stage: str) -> list[StageRun]:
        with self._lock:
            return list(self._workspaces[ws_id].runs.get(stage, []))

    def stage_status(self, ws_id: int, stage: str) -> list[dict[str, Any]]:
        """What ``GET .../pipeline/{stage}`` answers right now (no request recorded)."""
        with self._lock:
            return self._unlisted(self._status(self._workspaces[ws_id], stage, self._now()))

    # ------------------------------------------------------------------ domains ------------
    def add_domain(
        self, team_id: int, name: str, workspaces: Mapping[str, Iterable[int]] | None = None
    ) -> Domain:
        """Create (or replace) a team's domain with its path -> workspace ids map."""
        with self._lock:
            domain = Domain(
                team_id,
                name,
                copy_map(workspaces or {}),
                data_center_id=self.data_center_id,
            )
            self._domains[(team_id, name.lower())] = domain
            return domain

    def domain(self, team_id: int, name: str) -> Domain:
        """The live domain (``.workspaces``, ``.history``). KeyError if unknown."""
        with self._lock:
            return self._domains[(team_id, name.lower())]

    # ------------------------------------------------------------------ HTTP entry ---------
    def _serve_http(self, handler: Handler) -> None:
        listener = handler.server
        try:
            raw_body = handler.read_body()
        except (OSError, ValueError):
            handler.close_connection = True
            return
        target = handler.path
        split = urlsplit(target)
        path = split.path
        rel = path[4:] if path == "/api" or path.startswith("/api/") else path
        body: Any = None
        parse_error = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError as err:
                parse_error = str(err)
        rec = RecordedRequest(
            method=handler.command,
            path=rel,
            raw_path=target,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=Headers(handler.headers.items()),
            body=body,
            raw_body=raw_body,
            time=self._now(),
            port=listener.port,
            listener=listener.name,
        )
        with self._lock:
            self._requests.append(rec)
        try:
            self._answer(handler, rec, path, parse_error)
        finally:
            if self.on_request is not None:
                self.on_request(rec)

    def _answer(
        self, handler: Handler, rec: RecordedRequest, path: str, parse_error: str | None
    ) -> None:
        if (
            self._variants.id_order == "arrival"
            and rec.method == "POST"
            and rec.path == "/workspaces"
        ):
            rec.reserved_id = self._take_id()  # handed out now, used when it commits
        rule = self._faults.pick(rec.method, rec.path, rec.listener)
        if rule is not None:
            rec.fault = rule.kind
            if rule.kind == "drop_before":
                handler.drop()
                return
            if rule.kind in ("status", "429"):
                self._send(handler, rec, self._fault_reply(rec, rule))
                return
            if rule.kind == "late_commit":
                # A gateway gave up; the backend still works on the request.
                reply = self._fault_reply(rec, rule)
                reply.headers["Connection"] = "close"
                handler.close_connection = True
                self._send(handler, rec, reply)
                threading.Thread(
                    target=self._commit_late,
                    args=(rec, path, parse_error, rule.seconds),
                    name=f"emulator-late-commit-{rec.method}",
                    daemon=True,
                ).start()
                return
            if rule.kind == "redirect":
                location = rule.location
                if location is None:
                    base = (
                        rule.target
                        if "://" in rule.target
                        else self._listener(rule.target).base_url
                    )
                    location = base.rstrip("/") + rec.raw_path[len("/api") :]
                assert rule.status is not None
                self._send(
                    handler, rec, Reply(rule.status, headers={"Location": location, **rule.headers})
                )
                return
            if rule.kind == "delay" and self._closing.wait(rule.seconds):
                handler.drop()
                return
        try:
            reply = self._process(rec, path, parse_error)
        except Exception as err:
            with self._lock:
                self._internal_errors.append(f"{rec.method} {rec.raw_path}: {err!r}")
            reply = self._problem_reply(rec, 500, "Internal Server Error", repr(err))
        if rule is not None and rule.kind == "drop_after":
            handler.drop()  # the request was handled and committed; the answer is lost
            return
        if rule is not None and rule.kind == "status_after":
            reply = self._fault_reply(rec, rule)  # committed, but the client sees an error
        if rule is not None and rule.kind == "slow_answer" and self._closing.wait(rule.seconds):
            handler.drop()
            return
        if rule is not None and rule.kind == "hold" and not self._held(rule):
            handler.drop()
            return
        self._send(handler, rec, reply)

    def _held(self, rule: FaultRule) -> bool:
        """hold: wait until the test releases the rule (True), or the emulator closes
        or ``hold_seconds`` pass (False: the connection is dropped)."""
        until = time.monotonic() + rule.hold_seconds
        while not rule.released.wait(0.02):
            if self._closing.is_set() or time.monotonic() >= until:
                return False
        return True

    def _fault_reply(self, rec: RecordedRequest, rule: FaultRule) -> Reply:
        """The answer a status-like fault sends: its raw ``body`` or a problem."""
        assert rule.status is not None
        headers = dict(rule.headers)
        if rule.kind == "429":
            headers.setdefault("Retry-After", str(rule.retry_after))
        if rule.body is not None:
            raw = rule.body.encode() if isinstance(rule.body, str) else rule.body
            return Reply(rule.status, raw=raw, headers=headers, content_type=rule.content_type)
        phrase = http.HTTPStatus(rule.status).phrase
        return self._problem_reply(rec, rule.status, phrase, "injected fault", headers=headers)

    def _commit_late(
        self, rec: RecordedRequest, path: str, parse_error: str | None, seconds: float
    ) -> None:
        """late_commit: process the request ``seconds`` after its answer was sent."""
        if self._closing.wait(seconds):
            return
        sent_trace = rec.trace_id
        try:
            reply = self._process(rec, path, parse_error)
        except Exception as err:
            with self._lock:
                self._internal_errors.append(f"{rec.method} {rec.raw_path} (late): {err!r}")
            return
        finally:
            rec.trace_id = sent_trace
        with self._lock:
            self._event(
                "request_committed_late", method=rec.method, path=rec.path, status=reply.status
            )

    def _send(self, handler: Handler, rec: RecordedRequest, reply: Reply) -> None:
        rec.status = reply.status
        try:
            handler.send_reply(reply)
        except OSError:
            handler.close_connection = True

    def _problem_reply(
        self,
        rec: RecordedRequest,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        trace = uuid.uuid4().hex
        rec.trace_id = trace
        body: dict[str, Any] = {"status": status, "title": title, "traceId": trace}
        if detail is not None:
            body["detail"] = detail
        return Reply(status, body, headers=headers or {})

    def _website_reply(self, rec: RecordedRequest) -> Reply:
        """What the website answers outside ``/api`` (an api-url without it): a 404
        page (``website="not_found"``), or the web app's page for any GET
        (``"spa"``, 200; other methods 404)."""
        found = self.website == "spa" and rec.method == "GET"
        title = "Codesphere" if found else "404: This page could not be found"
        page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body></body></html>"
        return Reply(200 if found else 404, raw=page.encode(), content_type="text/html")

    def _violation(self, rec: RecordedRequest, problems: list[str]) -> None:
        """One entry in ``spec_violations`` per offending request."""
        message = f"{rec.method} {rec.raw_path}: {'; '.join(problems)}"
        rec.violations += problems
        with self._lock:
            self._violations.append(message)

    def _process(self, rec: RecordedRequest, path: str, parse_error: str | None) -> Reply:
        self._processing.reserved_id = rec.reserved_id  # this thread's create, if any
        if not (path == "/api" or path.startswith("/api/")):
            if self.website is not None:
                return self._website_reply(rec)
            self._violation(rec, ["path is outside the /api base path"])
            return self._problem_reply(rec, 404, "Not Found", f"no route {path}")
        route = self.spec.match(rec.method, rec.path)
        op = route.operation
        problems: list[str] = []
        params: dict[str, Any] = {}
        if op is None:
            if route.allowed:
                problems.append(f"method {rec.method} not allowed (allowed: {route.allowed})")
            else:
                problems.append("no such route in the spec")
        else:
            rec.route = op.template
            rec.operation_id = op.operation_id
            params, problems = op.check_path_params(route.raw_params)
            problems += op.check_query(rec.query)
            problems += op.check_body(
                bool(rec.raw_body),
                rec.headers.get("content-type", ""),
                rec.body,
                parse_error,
            )
        if problems:
            self._violation(rec, problems)
        streams = op is not None and op.streams
        auth = rec.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or given.strip() != self.token:
            return self._fail(
                rec,
                op,
                streams,
                401,
                UNAUTHORIZED,
                "missing Authorization header" if not auth else "invalid token",
            )
        if op is None:
            if route.allowed:
                return self._problem_reply(rec, 405, "Method Not Allowed", problems[0])
            return self._problem_reply(rec, 404, "Not Found", f"no route {rec.path}")
        if problems:
            return self._fail(rec, op, streams, 400, SCHEMA, "; ".join(problems))
        handler = _HANDLERS.get(op.operation_id)
        if handler is None:
            with self._lock:
                self._unemulated.append(f"{rec.method} {rec.raw_path} ({op.operation_id})")
            return self._problem_reply(
                rec, 501, "Not Implemented", f"{op.operation_id} is not emulated"
            )
        try:
            with self._lock:
                reply = handler(self, op, params, rec.body)
        except Problem as problem:
            reply = self._fail(rec, op, streams, problem.status, problem.title, problem.detail)
            reply.checked = problem.documented
        if reply.stream is None and reply.raw is None and reply.checked:
            checked = reply.body if reply.spec_body is None else reply.spec_body
            bad = op.check_response(reply.status, checked)
            if bad:
                with self._lock:
                    self._response_violations += [f"{rec.method} {rec.path}: {b}" for b in bad]
        return reply

    def _fail(
        self,
        rec: RecordedRequest,
        op: Operation | None,
        streams: bool,
        status: int,
        title: str,
        detail: str | None,
    ) -> Reply:
        reply = self._problem_reply(rec, status, title, detail)
        if not streams:
            return reply
        problem = reply.body

        def stream(emit: SSEWriter) -> None:
            emit("problem", problem)

        assert op is not None
        self._check_sse(op, "problem", problem)
        return self._sse_reply(stream)

    def _sse_reply(self, stream: Stream) -> Reply:
        """A 200 SSE answer with the variants' Content-Type and line ending."""
        variants = self._variants
        content_type = "text/event-stream"
        if variants.sse_charset:
            content_type += f"; charset={variants.sse_charset}"
        return Reply(
            200, stream=stream, content_type=content_type, line_ending=variants.line_ending
        )

    def _check_sse(self, op: Operation, event: str, data: Any) -> None:
        bad = op.check_sse_event(event, data)
        if bad:
            with self._lock:
                self._response_violations += [f"SSE {op.template}: {b}" for b in bad]

    # ------------------------------------------------------------------ handlers -----------
    def _ws(self, ws_id: int, *, running: bool = False) -> Workspace:
        ws = self._workspaces.get(ws_id)
        if ws is None or ws.deleted:
            raise Problem(404, NOT_FOUND, f"workspace {ws_id} does not exist")
        if running and not ws.running:
            state = "starting" if ws.starting else "not running"
            raise Problem(400, NOT_RUNNING, f"workspace {ws_id} is {state}")
        return ws

    def _status(self, ws: Workspace, stage: str, now: float) -> list[dict[str, Any]]:
        variants = self._variants
        idle_empty = variants.idle_steps == "empty"
        pods = self._ensure_pods(ws)
        gap = self._deploy_gap(ws, stage, now)
        view = _visible(
            ws.runs.get(stage, []),
            now,
            frozen=False,
            # deploy_status="gap": right after the allocation the old entries show
            reset=variants.on_start == "reset" and gap != "stale",
            idle_empty=idle_empty,
        )
        if view is None:
            entries = ws.entries(pod_names=pods)
            view = never_ran_view(entries, ws.stages[stage].steps, idle_empty=idle_empty)
        alive = set(ws.servers)  # servers a landscape deploy removed are gone
        if gap == "empty":
            alive = set()  # the deploy is under way: no customer server is listed
        view = [e for e in view if e["server"] == IDE_SERVER or e["server"] in alive]
        if not variants.timestamps:
            for entry in view:
                for item in (entry, *entry["steps"]):
                    item.pop("startedAt", None)
                    item.pop("finishedAt", None)
        if variants.entry_order == "customers_first":
            view.sort(key=lambda e: e["server"] == IDE_SERVER)  # stable: customers keep order
        elif variants.entry_order == "shuffled":
            self._order_rng.shuffle(view)
        return view

    def _deploy_gap(self, ws: Workspace, stage: str, now: float) -> str:
        """deploy_status="gap" on a multi-server workspace's run stage: "empty"
        while the latest deploy is under way, "stale" for deploy_stale_seconds
        after it allocated the servers, "" otherwise."""
        if self._variants.deploy_status != "gap" or stage != "run" or ws.landscape != "multi":
            return ""
        started = [d for d in ws.deploys if d.requested_at <= now]
        if not started:
            return ""
        latest = max(started, key=lambda d: d.requested_at)
        if now < latest.at:
            return "empty"
        return "stale" if now < latest.at + self._variants.deploy_stale_seconds else ""

    def _unlisted(self, view: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The status with the states the variants call by names the spec does not
        list: ``waiting_state`` for waiting entries and steps, ``skipped`` for the
        last step of a successful entry (``skipped_steps``)."""
        variants = self._variants
        if variants.waiting_state == "waiting" and not variants.skipped_steps:
            return view
        out = []
        for entry in view:
            steps = [dict(step) for step in entry["steps"]]
            if variants.skipped_steps and entry["state"] == "success" and steps:
                steps[-1] = {"state": "skipped"}
            for step in steps:
                if step["state"] == "waiting":
                    step["state"] = variants.waiting_state
            state = entry["state"]
            out.append(
                {
                    **entry,
                    "state": variants.waiting_state if state == "waiting" else state,
                    "steps": steps,
                }
            )
        return out

    def _ensure_pods(
        self, ws: Workspace, *, restart: bool = False, at: float | None = None
    ) -> bool:
        """replica_ids="pod": give every replica a pod name (new ones for the customer
        servers on ``restart``, i.e. a run start; the servers as of ``at``). Return
        whether pod names are in play."""
        if self._variants.replica_ids != "pod":
            return False
        rng = self._pod_rng
        alnum = string.ascii_lowercase + string.digits

        def name(server: str, template: str) -> str:
            suffix = "".join(rng.choice(alnum) for _ in range(5))
            return f"workspace-{ws.id}-{server}-{template}-{suffix}"

        if (IDE_SERVER, 0) not in ws.pods:
            ws.pods[(IDE_SERVER, 0)] = name(IDE_SERVER, f"{rng.getrandbits(40):010x}")
        for server in ws.servers_at(self._now() if at is None else at):
            indexes = range(ws.replicas)
            if restart or any((server, r) not in ws.pods for r in indexes):
                template = f"{rng.getrandbits(40):010x}"  # one replica set per start
                for r in indexes:
                    ws.pods[(server, r)] = name(server, template)
        return True

    def h_get_workspace(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, self._ws(p["workspaceId"]).to_json())

    def h_status(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, {"isRunning": self._ws(p["workspaceId"]).running})

    def h_list(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, [ws.to_json() for ws in self.workspaces(p["teamId"])])

    def h_create(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        if body["teamId"] in self._billing_blocked:
            raise Problem(
                402,
                BILLING,
                f"team {body['teamId']} has no billing information: add a payment method",
                documented=False,
            )
        known = {
            "teamId", "name", "planId", "isPrivateRepo", "replicas", "gitUrl", "initialBranch",
            "env", "baseImage", "restricted", "vpnConfig", "welcomeMessage", "sourceWorkspaceId",
            "cloneDepth", "storageMib", "sharedVaultName",
        }  # fmt: skip
        image = body.get("baseImage")
        if image is not None and image not in [i for i, _ in self.base_images]:
            raise Problem(400, "Base image not found", f"no base image {image!r}")
        vault = body.get("sharedVaultName")
        if vault is not None and (body["teamId"], vault) not in self._vaults.shared:
            raise Problem(400, "Shared vault not found", f"team {body['teamId']} has no {vault!r}")
        git_url = body.get("gitUrl")
        branch = body.get("initialBranch") or "main"
        if (
            git_url
            and self.branch_head(branch) is None
            and self._variants.missing_branch == "refuse"
        ):
            raise Problem(400, "Bad Request", f"branch {branch} not found in {git_url}")
        ws = self._new_workspace(
            body["teamId"],
            body["name"],
            "api",
            plan_id=body["planId"],
            is_private_repo=body["isPrivateRepo"],
            replicas=body["replicas"],
            git_url=git_url,
            initial_branch=body.get("initialBranch"),
            branch=branch,
            git_head=self.branch_head(branch) if git_url else None,
            env={e["name"]: e["value"] for e in body.get("env", [])},
            base_image=body.get("baseImage", "ubuntu-24.04"),
            restricted=body.get("restricted", False),
            vpn_config=body.get("vpnConfig"),
            welcome_message=body.get("welcomeMessage"),
            source_workspace_id=body.get("sourceWorkspaceId"),
            clone_depth=body.get("cloneDepth"),
            storage_mib=body.get("storageMib"),
            shared_vault_name=vault,
            extra={k: v for k, v in body.items() if k not in known},
        )
        ws.running_since = ws.created_at + ws.start_seconds
        ws.start_times.append(ws.running_since)
        return Reply(200, ws.to_json())

    def h_patch(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        fields = {
            "planId": "plan_id", "baseImage": "base_image", "name": "name",
            "replicas": "replicas", "vpnConfig": "vpn_config", "restricted": "restricted",
        }  # fmt: skip
        for key, value in body.items():
            if key in fields:
                setattr(ws, fields[key], value)
            else:
                ws.extra[key] = value
        self._event("workspace_updated", workspace_id=ws.id, changes=dict(body))
        if "replicas" in body and ws.running_since is None:
            self._wake(ws)
        return Reply(200)

    def h_delete(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        self._cut_runs(ws, "workspace deleted")
        ws.deleted = True
        ws.deleted_at = self._now()
        self._vaults.workspaces.pop(ws.id, None)  # bound to the workspace's lifecycle
        self._event("workspace_deleted", workspace_id=ws.id, name=ws.name, team_id=ws.team_id)
        return Reply(200)

    # -- vault and metadata -----------------------------------------------------------
    def _vault_ws(self, p: dict[str, Any]) -> Workspace:
        ws = self._workspaces.get(p["workspaceId"])
        if ws is None or ws.deleted or ws.team_id != p["teamId"]:
            raise Problem(
                400, "Workspace not found", f"no workspace {p['workspaceId']} in the team"
            )
        return ws

    def h_vault_store(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        vault = self._vaults.of(self._vault_ws(p))
        return self._vault_call(lambda: vault.store(body, self._wall_offset + self._now()))

    def h_vault_keys(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, sorted(self._vaults.of(self._vault_ws(p)).values))

    def h_vault_delete(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        self._vaults.of(self._vault_ws(p)).delete(body)
        return Reply(200)

    def h_shared_list(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, self._vaults.shared_names(p["teamId"]))

    def h_shared_create(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        self._vaults.shared.setdefault((p["teamId"], body["name"]), Secrets())
        return Reply(200)

    def h_shared_store(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return self._vault_call(
            lambda: self._vaults.shared_vault(p["teamId"], p["vaultName"]).store(
                body, self._wall_offset + self._now()
            )
        )

    def h_shared_keys(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return self._vault_call(
            lambda: sorted(self._vaults.shared_vault(p["teamId"], p["vaultName"]).values)
        )

    def h_shared_delete_secrets(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        self._vault_call(lambda: self._vaults.shared_vault(p["teamId"], p["vaultName"]))
        self._vaults.shared[(p["teamId"], p["vaultName"])].delete(body)
        return Reply(200)

    def h_shared_delete(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        self._vault_call(lambda: self._vaults.shared_vault(p["teamId"], p["vaultName"]))
        del self._vaults.shared[(p["teamId"], p["vaultName"])]
        return Reply(200)

    @staticmethod
    def _vault_call(call: Callable[[], Any]) -> Reply:
        try:
            value = call()
        except VaultProblem as problem:
            raise Problem(400, problem.title, problem.detail) from None
        return Reply(200, value if not isinstance(value, Secrets) else None)

    def h_base_images(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        until = iso(self._wall_offset + self._now() + 365 * 86400)
        return Reply(
            200, [{"id": i, "name": n, "supportedUntil": until} for i, n in self.base_images]
        )

    def h_env_list(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        return Reply(200, [{"name": k, "value": v} for k, v in ws.env.items()])

    def h_env_set(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        for item in body:
            ws.env[item["name"]] = item["value"]
        self._event("env_set", workspace_id=ws.id, names=[i["name"] for i in body])
        return Reply(200)

    def h_env_delete(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        for name in body:
            ws.env.pop(name, None)
        self._event("env_deleted", workspace_id=ws.id, names=list(body))
        return Reply(200)

    def h_git_pull(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        remote = p.get("remote", "origin")
        branch = p.get("branch", ws.branch)
        if remote not in self._remotes:
            raise Problem(400, "git error", f"'{remote}' does not appear to be a git repository")
        if not ws.git_url:
            raise Problem(400, "git error", "the workspace has no git repository")
        head = self.branch_head(branch)
        if head is None:
            raise Problem(400, "git error", f"couldn't find remote ref {branch}")
        ws.branch = branch
        ws.git_head = head
        self._event("git_pulled", workspace_id=ws.id, remote=remote, branch=branch, head=head)
        return Reply(200)

    def h_git_head(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        if ws.git_head is None:
            raise Problem(400, "git error", "the workspace has no git repository")
        return Reply(200, {"head": ws.git_head})

    @staticmethod
    def _check_profile(ws: Workspace, profile: str | None) -> None:
        if profile is not None and ws.profiles is not None and profile not in ws.profiles:
            raise Problem(400, "CI profile not found", f"ci.{profile}.yml does not exist")

    def h_start(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        stage: str = p["stage"]
        profile: str | None = p.get("profile")
        self._check_profile(ws, profile)
        cfg = ws.stages[stage]
        now = self._now()
        runs = ws.runs.setdefault(stage, [])
        previous = runs[-1] if runs else None
        # A stop still under way (stop_latency) ends the previous run as a stop; the new
        # run can only start once it has.
        stop_at = previous.stopped_at if previous is not None else None
        stopping = stop_at is not None and stop_at > now
        if previous is not None and previous.superseded_at is None and not stopping:
            previous.superseded_at = now
        latency = cfg.start_latency if cfg.start_latency is not None else self.start_latency
        start_at = now + latency
        if stop_at is not None and stop_at > now:
            start_at = max(start_at, stop_at)
        if stage == "run":
            # A landscape deploy still under way: the run starts the servers it
            # allocates, once they exist (the deploy is asynchronous; the status
            # shows the servers appear).
            pending = [d.at for d in ws.deploys if d.at > now]
            if pending:
                start_at = max(start_at, *pending)
            if self._variants.deploy_status == "gap" and ws.landscape == "multi":
                # The old entries come back first; the new run shows after them.
                stale = self._variants.deploy_stale_seconds
                recent = [d.at + stale for d in ws.deploys if d.at + stale > now]
                if recent:
                    start_at = max(start_at, max(recent) + latency)
        pods = self._ensure_pods(ws, restart=stage == "run", at=start_at)
        entries = ws.entries(pod_names=pods, at=start_at)
        fail_entries = None
        if cfg.fail_entries is not None:
            fail_entries = frozenset(
                (server, ws.pods.get((server, index), str(index)) if pods else str(index))
                for server, index in cfg.fail_entries
            )
        run = StageRun(
            ws_id=ws.id,
            stage=stage,
            profile=profile,
            number=len(runs) + 1,
            requested_at=now,
            start_at=start_at,
            steps=cfg.steps,
            seconds=cfg.seconds,
            fail_step=cfg.fail_step,
            entries=entries,
            logs={k: list(v) for k, v in cfg.logs.items()},
            error_lines=list(cfg.error_lines),
            _now=self._now,
            _wall_offset=self._wall_offset,
            ide_runs=ws.landscape == "run_on_ide",
            fail_entries=fail_entries,
            exits=cfg.exits and stage == "run",
        )
        runs.append(run)
        self._event(
            "stage_start_requested",
            workspace_id=ws.id,
            stage=stage,
            profile=profile,
            run=run.number,
        )
        return Reply(200)

    def h_stop(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        stage = p["stage"]
        run = ws.stage_run(stage)
        self._event(
            "stage_stop_requested", workspace_id=ws.id, stage=stage, run=run.number if run else None
        )
        if run is not None and run.stopped_at is None and run.ended_at is None:
            now = self._now()
            run.stop_requested_at = now
            run.stopped_at = now + self._variants.stop_latency
            run.stop_reason = "stopped"
        return Reply(200)

    def h_landscape_deploy(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"])
        profile: str | None = p.get("profile")
        if ws.landscape != "multi":
            raise Problem(400, NO_MULTI_SERVER, f"workspace {ws.id} is a single-server workspace")
        self._check_profile(ws, profile)
        if ws.landscape_error is not None:
            raise Problem(400, *ws.landscape_error)
        try:
            resolved = self._vaults.resolve(ws)
        except VaultProblem as problem:
            raise Problem(400, problem.title, problem.detail) from None
        now = self._now()
        deploy = LandscapeDeploy(
            now, now + ws.landscape_seconds, profile, list(ws.ci_servers), vault=resolved
        )
        ws.deploys.append(deploy)
        self._event(
            "landscape_deploy_requested",
            workspace_id=ws.id,
            profile=profile,
            servers=list(deploy.servers),
        )
        return Reply(200)

    def h_pipeline(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        view = self._status(ws, p["stage"], self._now())
        # Checked against the spec with its own names; answered with the unlisted ones.
        return Reply(200, self._unlisted(view), spec_body=view)

    def h_get_domain(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        return Reply(200, self._listed(self._domain(p)))

    def h_list_domains(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        team = p["teamId"]
        return Reply(200, [self._listed(d) for (t, _), d in self._domains.items() if t == team])

    def _listed(self, domain: Domain) -> dict[str, Any]:
        """A domain as an answer lists it: each path's workspaces in the order the
        variant ``map_order`` says (what is stored stays as written)."""
        body = domain.to_json()
        order = self._variants.map_order
        for ids in body["workspaces"].values():
            if order == "sorted":
                ids.sort()
            elif order == "reversed":
                ids.reverse()
            elif order == "shuffled":
                self._map_rng.shuffle(ids)
        return body

    def _domain(self, p: dict[str, Any]) -> Domain:
        domain = self._domains.get((p["teamId"], p["domainName"].lower()))
        if domain is not None and self._variants.domain_match == "exact":
            # The route takes the name exactly as the API lists it.
            domain = domain if domain.name == p["domainName"] else None
        if domain is None:
            raise Problem(
                404, DOMAIN_NOT_FOUND, f"domain {p['domainName']} not found in team {p['teamId']}"
            )
        return domain

    def h_connect(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        domain = self._domain(p)
        new = copy_map(body)
        if self.check_domain_workspaces:
            for ids in new.values():
                for ws_id in ids:
                    ws = self._workspaces.get(ws_id)
                    if ws is None or ws.deleted or ws.team_id != domain.team_id:
                        raise Problem(
                            400,
                            "Workspace not found",
                            f"workspace {ws_id} does not exist in team {domain.team_id}",
                        )
        previous = copy_map(domain.workspaces)
        domain.history.append((self._now(), previous))
        domain.workspaces = new
        self._event(
            "domain_updated",
            team_id=domain.team_id,
            domain=domain.name,
            workspaces=copy_map(new),
            previous=previous,
        )
        return Reply(200, self._listed(domain))

    def h_logs(self, op: Operation, p: dict[str, Any], body: Any) -> Reply:
        ws = self._ws(p["workspaceId"], running=True)
        stage = p.get("stage", "run")
        server, replica = p.get("server"), p.get("replica")
        if server is not None and server not in ws.servers:
            raise Problem(404, "Server not found", f"no server {server!r} in the workspace")
        if replica is not None:
            run = ws.stage_run("run")
            owners = [s for s, r in (run.entries if run else []) if r == replica]
            if not owners or owners[0] not in ws.servers:
                raise Problem(404, "Replica not found", f"no replica {replica!r} of the run stage")
            server = owners[0]
        if ws.landscape == "multi" and stage == "run" and server is None:
            raise Problem(
                400,
                "Run stage logs of Multi Server Deployments are served per server",
                "use logs/run/{step}/server/{server} or .../replica/{replica}",
            )
        stream = self._log_stream(op, ws.id, stage, p["step"], server=server, replica=replica)
        return self._sse_reply(stream)

    def _log_stream(
        self,
        op: Operation,
        ws_id: int,
        stage: str,
        step: int,
        *,
        server: str | None = None,
        replica: str | None = None,
    ) -> Stream:
        """The SSE stream of one step (of one server or replica of the run stage);
        when it ends follows ``variants.log_end`` as it was when the stream opened."""
        opened = self._now()
        bound: StageRun | None = self._workspaces[ws_id].stage_run(stage)
        variants = self._variants
        log_end = variants.log_end
        stays_open = log_end in ("open_silent", "open_keepalive")
        keepalive = variants.keepalive_seconds if log_end == "open_keepalive" else None
        cut_at = opened + variants.log_cut_seconds if log_end == "cut" else None
        deadline = opened + self.log_stream_max_seconds

        def stream(emit: SSEWriter) -> None:
            nonlocal bound
            next_ping = opened + keepalive if keepalive is not None else None
            sent = 0
            while True:
                problem = None
                with self._lock:
                    now = self._now()
                    ws = self._workspaces[ws_id]
                    if bound is None:
                        bound = ws.stage_run(stage)
                    ready: list[tuple[float, str, str]] = []
                    done = False  # the step ended, or it is clear it never runs
                    all_logged = False  # every line the step will log is out
                    if bound is not None and step >= bound.steps:
                        problem = (
                            400,
                            "Step not found",
                            f"stage {stage} has {bound.steps} steps; {step} requested",
                        )
                    elif bound is not None:
                        lines = bound.log_lines(step, server, replica)
                        ready = [line for line in lines if line[0] <= now]
                        end = bound.step_stream_end(step)
                        done = end is not None and now >= end
                        all_logged = bool(lines) and len(ready) == len(lines)
                    elif ws.deleted:
                        done = True
                if problem is not None:
                    data: Any = {
                        "status": problem[0],
                        "title": problem[1],
                        "detail": problem[2],
                        "traceId": uuid.uuid4().hex,
                    }
                    self._check_sse(op, "problem", data)
                    emit("problem", data)
                    return
                if len(ready) > sent:
                    data = [
                        {"timestamp": iso(self._wall_offset + t), "kind": kind, "data": text}
                        for t, kind, text in ready[sent:]
                    ]
                    self._check_sse(op, "data", data)
                    emit("data", data)
                    sent = len(ready)
                if log_end == "after_last_line" and all_logged:
                    return  # before the step ends
                if (done and not stays_open) or now >= deadline:
                    return
                if cut_at is not None and now >= cut_at:
                    raise ConnectionAbortedError("a proxy cut the stream")  # no terminator
                if next_ping is not None and keepalive is not None and now >= next_ping:
                    emit.comment("keep-alive")
                    while next_ping <= now:
                        next_ping += keepalive
                wait = 0.01
                if done:  # stays open with nothing more to say
                    if emit.client_gone():
                        return
                    wait = min(0.2, deadline - now, (next_ping or deadline) - now)
                if self._closing.wait(max(wait, 0.0)):
                    # cut the stream like a server going away, not like a finished step
                    raise ConnectionAbortedError("emulator closed")

        return stream


def _route_key(workspaces: Mapping[str, list[int]], path: str) -> str | None:
    """The key of a domain's map that routes ``path``: the longest matching one
    (its trailing slash ignored) that lists a workspace."""
    for prefix in sorted(workspaces, key=len, reverse=True):
        base = prefix.rstrip("/")
        if (path == base or path.startswith(base + "/")) and workspaces[prefix]:
            return prefix
    return None


def _visible(
    runs: list[StageRun],
    t: float,
    *,
    frozen: bool,
    reset: bool = False,
    idle_empty: bool = False,
) -> list[dict[str, Any]] | None:
    """The status shown at ``t``: a run becomes visible only after its start latency;
    until then the one before it shows, frozen as it was when the new start came in
    (on_start="stale"), or the new run's entries show ``waiting`` (``reset``)."""
    if not runs:
        return None
    latest = runs[-1]
    if reset or t >= latest.start_at or (latest.stopped_at is not None and latest.stopped_at <= t):
        return latest.view(t, ignore_supersede=frozen, idle_empty=idle_empty)
    return _visible(runs[:-1], latest.requested_at, frozen=True, idle_empty=idle_empty)


def _configure(stages: dict[str, StageConfig], stage: str, **options: Any) -> None:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    cfg = stages[stage]
    for key, value in options.items():
        if value is _UNSET:
            continue
        if key == "error_lines" and isinstance(value, str):
            value = [value]
        elif key == "error_line":
            key, value = "error_lines", [value]
        elif key == "logs":
            value = {int(k): list(v) for k, v in value.items()}
        elif key == "error_lines":
            value = list(value)
        elif key == "fail_entries" and value is not None:
            value = [(str(server), int(index)) for server, index in value]
        if not hasattr(cfg, key):
            raise TypeError(f"unknown stage option {key!r}")
        setattr(cfg, key, value)
    if cfg.steps < 0 or cfg.seconds < 0:
        raise ValueError("steps and seconds must not be negative")
    if cfg.fail_step is not None and not 0 <= cfg.fail_step < cfg.steps:
        raise ValueError(f"fail_step {cfg.fail_step} outside 0..{cfg.steps - 1}")


_Handler = Callable[[Emulator, Operation, dict[str, Any], Any], Reply]
_HANDLERS: dict[str, _Handler] = {
    "workspaces-getWorkspace": Emulator.h_get_workspace,
    "workspaces-updateWorkspace": Emulator.h_patch,
    "workspaces-deleteWorkspace": Emulator.h_delete,
    "workspaces-getWorkspaceStatus": Emulator.h_status,
    "workspaces-createWorkspace": Emulator.h_create,
    "workspaces-listWorkspaces": Emulator.h_list,
    "workspaces-listEnvVars": Emulator.h_env_list,
    "workspaces-setEnvVar": Emulator.h_env_set,
    "workspaces-deleteEnvVar": Emulator.h_env_delete,
    "workspaces-gitPull": Emulator.h_git_pull,
    "workspaces-gitPull-1": Emulator.h_git_pull,
    "workspaces-gitPull-2": Emulator.h_git_pull,
    "workspaces-gitHead": Emulator.h_git_head,
    "workspaces-startPipelineStage": Emulator.h_start,
    "workspaces-startPipelineStage-1": Emulator.h_start,
    "workspaces-stopPipelineStage": Emulator.h_stop,
    "workspaces-deployLandscape": Emulator.h_landscape_deploy,
    "workspaces-deployLandscape-1": Emulator.h_landscape_deploy,
    "workspaces-pipelineStatus": Emulator.h_pipeline,
    "workspaces-logs": Emulator.h_logs,
    "workspaces-serverLogs": Emulator.h_logs,
    "workspaces-replicaLogs": Emulator.h_logs,
    "domains-getDomain": Emulator.h_get_domain,
    "domains-listDomains": Emulator.h_list_domains,
    "domains-updateWorkspaceConnections": Emulator.h_connect,
    "vault-storeWorkspaceSecrets": Emulator.h_vault_store,
    "vault-listWorkspaceSecrets": Emulator.h_vault_keys,
    "vault-deleteWorkspaceSecrets": Emulator.h_vault_delete,
    "vault-listSharedVaults": Emulator.h_shared_list,
    "vault-createSharedVault": Emulator.h_shared_create,
    "vault-storeSharedSecrets": Emulator.h_shared_store,
    "vault-listSharedSecretKeys": Emulator.h_shared_keys,
    "vault-deleteSharedSecrets": Emulator.h_shared_delete_secrets,
    "vault-deleteSharedVault": Emulator.h_shared_delete,
    "metadata-getWorkspaceBaseImages": Emulator.h_base_images,
}

__all__ = ["IDE_SERVER", "Emulator", "Problem", "default_branch_head"]
