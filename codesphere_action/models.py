"""Typed answers of the Codesphere API, checked where they enter the program.

The client parses every body it expects into one of these, and a body that
does not have the expected shape is a ``BadAnswer``: never an empty result
that a flow could take for "nothing there". Fields the spec marks optional
(``startedAt``, ``finishedAt``, ``devDomain``, ``teamId``) stay optional here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import BadAnswer

# The states the spec lists. Others are taken as they come (an API newer than its
# published spec): the waits treat them as "not finished" and say once what
# they saw (steps.py); they never make an answer wrong.
STATES = frozenset({"waiting", "running", "success", "failure", "aborted"})


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

    @classmethod
    def parse(cls, value: Any, what: str = "workspace") -> Workspace:
        body = _obj(what, value)
        team = body.get("teamId")
        replicas = body.get("replicas")
        return cls(
            id=_int(f"{what}.id", body.get("id")),
            name=_str(f"{what}.name", body.get("name"), optional=True),
            team_id=None if team is None else _int(f"{what}.teamId", team),
            dev_domain=_str(f"{what}.devDomain", body.get("devDomain"), optional=True),
            replicas=0 if replicas is None else _int(f"{what}.replicas", replicas),
        )

    @classmethod
    def parse_list(cls, value: Any, what: str = "workspaces") -> list[Workspace]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]


@dataclass(frozen=True)
class Step:
    state: str
    started_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class StageEntry:
    """One server replica's view of a stage run."""

    server: str
    replica: str
    state: str
    started_at: str | None = None
    finished_at: str | None = None
    steps: tuple[Step, ...] = ()

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
            steps.append(
                Step(
                    state=_state(f"{what}.steps[{index}].state", step.get("state")),
                    started_at=_time(step.get("startedAt")),
                    finished_at=_time(step.get("finishedAt")),
                )
            )
        return cls(
            server=_str(f"{what}.server", body.get("server")),
            replica=str(body.get("replica", "")),
            state=_state(f"{what}.state", body.get("state")),
            started_at=_time(body.get("startedAt")),
            finished_at=_time(body.get("finishedAt")),
            steps=tuple(steps),
        )

    @classmethod
    def parse_list(cls, value: Any, what: str = "stage status") -> list[StageEntry]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]

    def unlisted_states(self) -> set[tuple[str, str]]:
        """("entry" | "step", state) for each state here the spec does not list."""
        found = {("entry", self.state)} if self.state not in STATES else set()
        return found | {("step", step.state) for step in self.steps if step.state not in STATES}


def _state(what: str, value: Any) -> str:
    """A state: any non-empty string (one the spec does not list included)."""
    if not isinstance(value, str) or not value:
        raise _fail(what, "a state such as " + ", ".join(sorted(STATES)), value)
    return value


def _time(value: Any) -> str | None:
    # Compared for equality only, never parsed: any non-empty string will do.
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class DomainInfo:
    name: str
    workspaces: dict[str, list[int]]  # path -> workspace ids

    @classmethod
    def parse(cls, value: Any, what: str = "domain") -> DomainInfo:
        body = _obj(what, value)
        # Required by the spec: a domain without its map is a wrong answer, never
        # an empty map (a switch would drop every other path).
        connected = _obj(f"{what}.workspaces", body.get("workspaces"))
        paths = {
            str(path): [_int(f"{what}.workspaces[{path!r}]", i) for i in _list(what, ids)]
            for path, ids in connected.items()
        }
        return cls(name=_str(f"{what}.name", body.get("name"), optional=True), workspaces=paths)

    @classmethod
    def parse_list(cls, value: Any, what: str = "domains") -> list[DomainInfo]:
        return [cls.parse(item, f"{what}[{i}]") for i, item in enumerate(_list(what, value))]

    def serving(self, workspace_id: int) -> list[str]:
        """The paths of this domain that route to ``workspace_id``."""
        return sorted(path for path, ids in self.workspaces.items() if workspace_id in ids)


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
class LogEntry:
    kind: str  # "I" (info) or "E" (error)
    text: str
