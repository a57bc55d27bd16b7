"""Deterministic, countable fault rules."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

KINDS = (
    "status",  # answer status (default 503) at once, nothing processed
    "429",  # 429 with Retry-After, nothing processed
    "drop_before",  # close the connection, nothing processed
    "drop_after",  # process and commit, close without an answer
    "delay",  # wait seconds, then process and answer
    "redirect",  # 3xx to another listener or location, nothing processed
    "status_after",  # process and commit, answer status (default 502) instead ("5xx after commit")
    "slow_answer",  # process and commit at once, send the real answer seconds later
    "late_commit",  # answer status (default 504) at once, process and commit seconds later
    "hold",  # process and commit at once, send the real answer once release() is called
)
# Kinds whose request is processed (committed) although the client may not learn of it.
COMMITTING = frozenset(
    {"drop_after", "delay", "status_after", "slow_answer", "late_commit", "hold"}
)
_DEFAULT_STATUS = {"status": 503, "status_after": 502, "late_commit": 504, "redirect": 307}
_ALIASES = {"rate_limit": "429", "drop": "drop_before"}


@dataclass
class FaultRule:
    """A fault rule; returned by ``Emulator.add_fault``. ``hits`` counts injections."""

    kind: str
    method: str | None = None
    path: str | None = None  # regex, re.search on the path without /api
    times: int | None = 1  # None: unlimited
    probability: float = 1.0
    skip: int = 0  # let this many matching requests through first
    every: int = 1  # fire on every n-th matching request (after skip): 5 = a fifth of them
    listener: str | None = None  # only on this listener ("primary", "second", "foreign")
    # status, status_after, late_commit: the HTTP status; redirect: 301/302/303/307/308
    status: int | None = None
    retry_after: float | int | str = 1
    seconds: float = 0.0  # delay, slow_answer, late_commit; hold: the longest it holds (0: 60 s)
    target: str = "second"  # redirect: "second" | "foreign" | "primary" | a base URL
    location: str | None = None  # redirect: full Location, overrides target
    body: str | bytes | None = None  # status/429/status_after/late_commit: raw body
    content_type: str = "text/html"  # with body
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    seen: int = 0
    removed: bool = False
    _regex: re.Pattern[str] | None = field(default=None, repr=False)
    # hold: set by release(); the held answers go out then.
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self.kind = _ALIASES.get(self.kind, self.kind)
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.path is not None:
            self._regex = re.compile(self.path)
        if self.status is None:
            self.status = _DEFAULT_STATUS.get(self.kind)
        if self.kind == "429":
            self.status = 429
        if self.seconds < 0:
            raise ValueError(f"fault seconds={self.seconds!r} must not be negative")

    @property
    def exhausted(self) -> bool:
        return self.removed or (self.times is not None and self.hits >= self.times)

    def remove(self) -> None:
        """Stop injecting this fault."""
        self.removed = True

    def release(self) -> None:
        """hold: send the answers held so far, and those of later hits at once."""
        self.released.set()

    @property
    def hold_seconds(self) -> float:
        return self.seconds or 60.0

    def matches(self, method: str, path: str, listener: str) -> bool:
        if self.exhausted:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.listener is not None and self.listener != listener:
            return False
        if self.kind == "redirect" and self.location is None and self.target == listener:
            return False  # never redirect a listener onto itself
        return self._regex is None or self._regex.search(path) is not None


class FaultBook:
    """The rules in the order they were added; the first that fires wins."""

    def __init__(self, seed: int | None) -> None:
        self.rules: list[FaultRule] = []
        self.rng = random.Random(seed)
        self.injected = 0
        self.lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def pick(self, method: str, path: str, listener: str) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if not rule.matches(method, path, listener):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.every > 1 and (rule.seen - rule.skip) % rule.every != 0:
                    continue
                if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                self.injected += 1
                return rule
            return None
