"""Typed answers of the Codesphere API, checked where they enter the program.

The client parses every body it expects into one of these, and a body that
does not have the expected shape is a ``BadAnswer``: never an empty result
that a flow could take for "nothing there". Fields the spec marks optional
(``startedAt``, ``finishedAt``, ``devDomain``, ``teamId``) stay optional here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import BadAnswer


class StageState(StrEnum):
    """A stage entry's or step's state: the spec's five, and ``UNLISTED`` for any
    other (an API newer than its published spec, e.g. ``pending``, ``skipped``).
    The waits treat an unlisted state as "not finished" (an entry) or "not
    failed" (a step) and say once what they saw; it never makes an answer
    wrong. The state as the API spelled it is kept beside it (``raw_state``)."""

    WAITING = "waiting"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    ABORTED = "aborted"
    UNLISTED = "unlisted"

    @classmethod
    def of(cls, raw: str) -> StageState:
        try:
            state = cls(raw)
        except ValueError:
            return cls.UNLISTED
        return cls.UNLISTED if state is cls.UNLISTED else state


# The states the spec lists.
STATES = frozenset(s for s in StageState if s is not StageState.UNLISTED)


def _fail(what: str, expected: str, value: Any) -> BadAnswer:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return BadAnswer(f"{what}: expected {expected}, got {shown}")


def _int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(what, "an integer", value)
    return value


def _str(what: str, value: Any, *, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise _fail(what, "a string", value)
    return value


def _obj(what: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(what, "a JSON object", value)
    return value


def _list(what: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(what, "a JSON array", value)
    return value


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    team_id: int | None
    dev_domain: str  # "" when the API reports none
    replicas: int
    # When it was made, as the API says it (an ISO 8601 date-time; "" when it says
    # none): prune's age of a workspace whose mark does not say when it started.
    created_at: str = ""
    # The workspace it was made from (a copy, whose env is that one's), None for
    # one made afresh: the action never makes a copy.
    source_workspace_id: int | None = None

    @classmethod
    def parse(cls, value: Any, what: str = "workspace") -> Workspace:
        body = _obj(what, value)
        team = body.get("teamId")
        replicas = body.get("replicas")
        source = body.get("sourceWorkspaceId")
        return cls(
            id=_int(f"{what}.id", body.get("id")),
            name=_str(f"{what}.name", body.get("name"), optional=True),
            team_id=None if team is None else _int(f"{what}.teamId", team),
            dev_domain=_str(f"{what}.devDomain", body.get("devDomain"), optional=True),
            replicas=0 if replicas is None else _int(f"{what}.replicas", replicas),
            created_at=_time(body.get("createdAt")) or "",
            source_workspace_id=(
                None if source is None else _int(f"{what}.sourceWorkspaceId", source)
            ),
        )

    @classmethod
    def parse_list(cls, value: Any, what: str = "workspaces") -> list[Workspace]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]


@dataclass(frozen=True)
class Step:
    state: StageState
    started_at: str | None = None
    finished_at: str | None = None
    raw_state: str = ""  # as the API spelled it (an unlisted state's name)


@dataclass(frozen=True)
class StageEntry:
    """One server replica's view of a stage run."""

    server: str
    replica: str
    state: StageState
    started_at: str | None = None
    finished_at: str | None = None
    steps: tuple[Step, ...] = ()
    raw_state: str = ""  # as the API spelled it (an unlisted state's name)

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.replica)

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """Everything that changes when a run progresses."""
        return (self.state, self.started_at, self.finished_at, self.steps)

    @classmethod
    def parse(cls, value: Any, what: str) -> StageEntry:
        body = _obj(what, value)
        steps = []
        for index, raw in enumerate(_list(f"{what}.steps", body.get("steps", []))):
            step = _obj(f"{what}.steps[{index}]", raw)
            state = _state(f"{what}.steps[{index}].state", step.get("state"))
            steps.append(
                Step(
                    state=StageState.of(state),
                    started_at=_time(step.get("startedAt")),
                    finished_at=_time(step.get("finishedAt")),
                    raw_state=state,
                )
            )
        state = _state(f"{what}.state", body.get("state"))
        return cls(
            server=_str(f"{what}.server", body.get("server")),
            replica=str(body.get("replica", "")),
            state=StageState.of(state),
            started_at=_time(body.get("startedAt")),
            finished_at=_time(body.get("finishedAt")),
            steps=tuple(steps),
            raw_state=state,
        )

    @classmethod
    def parse_list(cls, value: Any, what: str = "stage status") -> list[StageEntry]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]

    def unlisted_states(self) -> set[tuple[str, str]]:
        """("entry" | "step", state) for each state here the spec does not list."""
        unlisted = StageState.UNLISTED
        found = {("entry", self.raw_state)} if self.state is unlisted else set()
        return found | {("step", step.raw_state) for step in self.steps if step.state is unlisted}


def _state(what: str, value: Any) -> str:
    """A state: any non-empty string (one the spec does not list included)."""
    if not isinstance(value, str) or not value:
        raise _fail(what, "a state such as " + ", ".join(sorted(STATES)), value)
    return value


def _time(value: Any) -> str | None:
    # Compared for equality only, never parsed: any non-empty string will do.
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, eq=False)
class DomainMap(Mapping[str, tuple[int, ...]]):
    """A domain's ``{path: workspace ids}``, as ``PUT .../workspace-connections``
    takes it: whole (paths left out are gone). Changes make a new map."""

    _paths: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, paths: Mapping[str, Any]) -> DomainMap:
        return cls({path: tuple(ids) for path, ids in paths.items()})

    def __getitem__(self, path: str) -> tuple[int, ...]:
        return self._paths[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __eq__(self, other: object) -> bool:
        """Same paths with the same ids (in the same order; ``same_as``: in any
        order); a plain mapping of lists compares too."""
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._paths == {path: tuple(ids) for path, ids in other.items()}

    __hash__ = None  # type: ignore[assignment]  # a mapping: not hashable

    def ids(self, path: str) -> tuple[int, ...]:
        """The workspaces of ``path``; () when it has none."""
        return self._paths.get(path, ())

    def lists(self, path: str, ids: Iterable[int]) -> bool:
        """Whether ``path`` lists exactly ``ids``, in any order: no document says
        the API keeps the order a PUT gave."""
        return sorted(self.ids(path)) == sorted(ids)

    def same_as(self, other: DomainMap) -> bool:
        """The same paths, each listing the same ids in any order (``lists``)."""
        return set(self) == set(other) and all(self.lists(p, other.ids(p)) for p in other)

    def with_path(self, path: str, ids: Any) -> DomainMap:
        """This map with ``path`` pointing at ``ids`` (every other path as it is)."""
        return DomainMap({**self._paths, path: tuple(ids)})

    def without(self, path: str) -> DomainMap:
        return DomainMap({p: v for p, v in self._paths.items() if p != path})

    def serving(self, workspace_id: int) -> list[str]:
        """The paths that route to ``workspace_id``."""
        return sorted(path for path, ids in self._paths.items() if workspace_id in ids)

    def to_json(self) -> dict[str, list[int]]:
        return {path: list(ids) for path, ids in self._paths.items()}

    def describe(self) -> str:
        """``/ -> 12, /api -> 34``, for the log."""
        parts = [f"{p} -> {', '.join(map(str, v))}" for p, v in sorted(self._paths.items())]
        return ", ".join(parts) or "no paths connected"


@dataclass(frozen=True)
class DomainInfo:
    name: str
    workspaces: DomainMap

    @classmethod
    def parse(cls, value: Any, what: str = "domain") -> DomainInfo:
        body = _obj(what, value)
        # Required by the spec: a domain without its map is a wrong answer, never
        # an empty map (a switch would drop every other path).
        connected = _obj(f"{what}.workspaces", body.get("workspaces"))
        paths = {
            str(path): tuple(_int(f"{what}.workspaces[{path!r}]", i) for i in _list(what, ids))
            for path, ids in connected.items()
        }
        name = _str(f"{what}.name", body.get("name"), optional=True)
        return cls(name=name, workspaces=DomainMap(paths))

    @classmethod
    def parse_list(cls, value: Any, what: str = "domains") -> list[DomainInfo]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str

    @classmethod
    def parse_list(cls, value: Any, what: str = "env vars") -> list[EnvVar]:
        out = []
        for index, raw in enumerate(_list(what, value)):
            item = _obj(f"{what}[{index}]", raw)
            out.append(
                cls(
                    _str(f"{what}[{index}].name", item.get("name")),
                    _str(f"{what}[{index}].value", item.get("value"), optional=True),
                )
            )
        return out


@dataclass(frozen=True)
class BaseImage:
    """One of ``GET /metadata/workspace-base-images``."""

    id: str
    name: str

    @classmethod
    def parse_list(cls, value: Any, what: str = "base images") -> list[BaseImage]:
        out = []
        for index, raw in enumerate(_list(what, value)):
            item = _obj(f"{what}[{index}]", raw)
            out.append(
                cls(
                    _str(f"{what}[{index}].id", item.get("id")),
                    _str(f"{what}[{index}].name", item.get("name"), optional=True),
                )
            )
        return out


def parse_revisions(value: Any, what: str = "stored secrets") -> dict[str, str]:
    """The answer of a vault store: each key's revision (``<n>__<time>``)."""
    return {str(key): str(rev) for key, rev in _obj(what, value).items()}


@dataclass(frozen=True)
class LogEntry:
    kind: str  # "I" (info) or "E" (error)
    text: str


@dataclass(frozen=True)
class CreateWorkspace:
    """The body of ``POST /workspaces``: the spec's required fields, then the
    optional ones, each sent only when set."""

    team_id: int
    name: str
    plan_id: int
    is_private_repo: bool
    replicas: int
    git_url: str = ""
    initial_branch: str = ""
    env: tuple[EnvVar, ...] = ()
    base_image: str = ""
    clone_depth: int | None = None
    restricted: bool | None = None
    shared_vault_name: str = ""
    storage_mib: int | None = None
    vpn_config: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "teamId": self.team_id,
            "name": self.name,
            "planId": self.plan_id,
            "isPrivateRepo": self.is_private_repo,
            "replicas": self.replicas,
        }
        if self.git_url:
            body["gitUrl"] = self.git_url
        if self.initial_branch:
            body["initialBranch"] = self.initial_branch
        if self.env:
            body["env"] = [{"name": v.name, "value": v.value} for v in self.env]
        optional = {
            "baseImage": self.base_image or None,
            "cloneDepth": self.clone_depth,
            "restricted": self.restricted,
            "sharedVaultName": self.shared_vault_name or None,
            "storageMib": self.storage_mib,
            "vpnConfig": self.vpn_config or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body
