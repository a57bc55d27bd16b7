"""Time as a value, and every timing constant of the action with its reason.

A ``Deadline`` is made by the phase that owns the time (``stage-timeout``,
``workspace-timeout``, ``health-check-timeout``, a switch, a cleanup, a Check
phase's reads) and handed to every wait, request and health check that
serves it: each takes one as a required argument, so the type checker finds a
call without one. A callee may shorten it (``within``), never lengthen it. It
also carries the runner's cancel budget: once a signal came, every deadline
ends by then at the latest, so a request in flight when the job is cancelled
is cut to what the runner still allows.

Standard library only (and backoff's generator for the retry backoff).
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import backoff

from .clock import Clock


def _no_cancel() -> float | None:
    return None


@dataclass(frozen=True)
class Deadline:
    """``at``: the instant (on ``clock``'s scale) the phase's time ends; ``cancel``:
    the cancel budget's instant once the runner has signalled (None before)."""

    at: float
    clock: Clock = field(compare=False, repr=False)
    cancel: Callable[[], float | None] = field(default=_no_cancel, compare=False, repr=False)
    seconds: float = 0.0  # how long it was when it was made, for messages ("within 30 min")

    @classmethod
    def after(
        cls, seconds: float, clock: Clock, cancel: Callable[[], float | None] = _no_cancel
    ) -> Deadline:
        return cls(clock.now() + seconds, clock, cancel, seconds)

    def within(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` from now if that comes first: never later."""
        now = self.clock.now()
        if now + seconds >= self.at:
            return self
        return replace(self, at=now + seconds, seconds=seconds)

    def grace(self, seconds: float) -> Deadline:
        """For looking at what a request whose outcome is unknown did: this
        deadline while time is left, else ``seconds`` more (its answer may have
        come too late to be read). The one way to go past a deadline, and never
        past the cancel budget."""
        if not self.expired:
            return self
        return replace(self, at=self.clock.now() + seconds, seconds=seconds)

    @property
    def limit(self) -> float:
        """The instant it ends: ``at``, or the cancel budget if that comes first."""
        budget = self.cancel()
        return self.at if budget is None else min(self.at, budget)

    def left(self) -> float:
        """Seconds until ``limit`` (0 once it passed)."""
        return max(0.0, self.limit - self.clock.now())

    @property
    def expired(self) -> bool:
        return self.clock.now() >= self.limit

    @property
    def cancelled(self) -> bool:
        """Whether the runner has signalled (the cancel budget is in force)."""
        return self.cancel() is not None

    def cap(self, seconds: float) -> float:
        """``seconds``, cut to the time left; never below 50 ms, so that a socket
        timeout is never zero (a call past its deadline is refused before it is
        sent, see the transport)."""
        return max(0.05, min(seconds, self.left()))


@dataclass(frozen=True)
class PollPolicy:
    """When to poll: ``first`` after the start; then, with ``steady``, every
    ``steady`` seconds until ``steady_until`` seconds have passed; then each wait
    ``factor`` times the one before, never more than ``cap``. Each wait is
    stretched by up to ``jitter`` (a fraction) so many runners never poll in
    lockstep; the jitter only lengthens, so it never adds polls, and no wait is
    longer than ``cap * (1 + jitter)``."""

    first: float = 0.25
    factor: float = 1.5
    cap: float = 2.7
    jitter: float = 0.1
    steady: float = 0.0
    steady_until: float = 0.0

    def __post_init__(self) -> None:
        if not (
            0 < self.first <= self.cap
            and self.factor >= 1
            and 0 <= self.jitter < 1
            and 0 <= self.steady <= self.cap
        ):
            raise ValueError(f"inconsistent poll policy: {self}")

    def after(self, delay: float, elapsed: float) -> float:
        """The wait that follows a wait of ``delay``, ``elapsed`` seconds into the
        wait (before jitter): steady while ``steady_until`` has not passed, then
        ``factor`` times longer up to ``cap``."""
        if self.steady and elapsed + 1e-9 < self.steady_until:
            return self.steady
        return min(self.cap, max(delay, self.steady) * self.factor)

    def stretch(self, delay: float, rng: random.Random) -> float:
        return delay * (1 + rng.uniform(0, self.jitter))

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The waits of a wait that no cue interrupts."""
        delay, elapsed = self.first, 0.0
        while True:
            waited = self.stretch(delay, rng)
            yield waited
            elapsed += waited
            delay = self.after(delay, elapsed)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff between the attempts of one call,
    whose retries end ``budget`` seconds after its first attempt (or at its
    deadline, whichever comes first). No wait is ever shorter than
    ``min_delay``, whatever the jitter draws or a ``Retry-After: 0`` says, so a
    misbehaving server cannot make us hammer it."""

    base: float = 0.25
    factor: float = 2.0
    cap: float = 5.0
    budget: float = 60.0
    min_delay: float = 0.1

    def delays(self, rng: random.Random) -> Iterator[float]:
        """Wait before each retry: full jitter over an exponential ceiling."""
        ceilings = backoff.expo(base=self.factor, factor=self.base, max_value=self.cap)
        next(ceilings)  # backoff's generators yield None first (their .send() priming)
        for ceiling in ceilings:
            yield max(self.min_delay, rng.uniform(0, ceiling))


@dataclass(frozen=True)
class Tuning:
    """How the action waits, in one value main hands down (the benchmark's
    reference poller passes another; nothing patches a module's globals)."""

    quick: PollPolicy
    stage: PollPolicy
    follow_step_logs: bool = True  # read the running step's log stream as an end cue


# -- the cancel budget (signals.py) -------------------------------------------------------
# Seconds the runner waits after each signal before it sends the next one, then kills.
GRACE = {signal.SIGINT: 7.5, signal.SIGTERM: 2.5}
RESERVE = 0.5  # of the cancel budget, kept for writing outputs and the summary, and exiting

# -- requests (api/transport.py) ----------------------------------------------------------
CONNECT_SECONDS = 5.0  # a TCP and TLS connect; a reachable host answers far sooner
READ_SECONDS = 30.0  # an API answer; Codesphere's calls answer within a second or two
RETRY = RetryPolicy()  # a call's retries: 0.25 s doubling to 5 s, for 60 s at most
CONNECT_BUDGET = 10.0  # a host that refuses or does not resolve is given up on after this
RETRY_NOTICE_SECONDS = 3.0  # a retry loop longer than this says so in the log
CHECK_SECONDS = 300.0  # a Check phase's reads (team, domains, marks) end within this
PULL_READ_SECONDS = 120.0  # a git pull answers when it is done: a large repository's takes long
CREATE_READ_SECONDS = 60.0  # a create is awaited this long, never sent twice while it may run
START_READ_SECONDS = 60.0  # a stage start too: a busy platform may answer late
CREATE_SETTLE_SECONDS = 30.0  # a create whose answer was lost is looked for this long
OUTCOME_GRACE_SECONDS = 5.0  # a request answered too late: this long to look at what it did
DELETE_RESERVE = 2.0  # of the cancel budget, kept to delete what a cut-off create made
CLEANUP_SECONDS = 60.0  # deleting what a failed run made, outside a cancel
SWITCH_SECONDS = 60.0  # a domain switch (read, write, read back) ends within this
# Each answer of the switch is awaited this long: one in flight when the runner
# cancels still leaves time to check the map and report within SIGINT's 7.5 s.
SWITCH_READ_SECONDS = 3.0
# The mark's "released" right after a switch: a 5xx or a lost answer is retried
# this long, not a whole retry budget (the release stands without it, and a
# later prune knows the way back from the next release's mark).
MARK_SECONDS = 5.0

# -- waits (waiting.py, steps) ------------------------------------------------------------
# Waits with no signal of their end (a workspace starting, run servers coming
# up): poll soon and often at first, so a short wait is noticed within a
# fraction of a second, then settle at the cap.
QUICK = PollPolicy(first=0.1, factor=1.2, cap=2.5)
# Stage waits, where a step's log stream may end with the step (a cue to poll
# at once). The polls are the safety net when no cue comes (streams that end
# early or stay open): at 0.25 s, every 0.8 s until 3.45 s (where short stages
# end), then every 2.9 s: 11 polls for a 20 s stage (12 with a wrong cue), and
# never more than 3 s late.
STAGE = PollPolicy(first=0.25, steady=0.8, steady_until=3.45, factor=4.0, cap=2.9, jitter=0.03)
DEFAULT_TUNING = Tuning(quick=QUICK, stage=STAGE)
STOP_SETTLE_SECONDS = 60.0  # after a stop, wait this long at most for the old run to end
# A start whose run never shows (the status stays as it was), or a run stage
# that starts no customer server, fails after this long instead of waiting out
# the whole stage-timeout (a landscape's servers may appear slowly).
NO_SIGN_SECONDS = 60.0
NO_SERVER_SECONDS = 120.0
# A multi-server run stage counts as up once that held this long with the same
# servers: a landscape's servers may appear one after another.
CONFIRM_SECONDS = 1.0
LOG_READ_SECONDS = 5.0  # reading a failed step's log takes at most this long...
LOG_QUIET_SECONDS = 1.0  # ...and ends once no line came for this long
# show-logs: always reads every step's log of a stage that ran, each as above, within
# this: a stage of many steps whose streams stay open cannot hold the release up longer.
SHOW_LOGS_SECONDS = 20.0
# A stage that timed out shows the log of the step that was running (show-logs: always,
# the steps' before it too) within this, past stage-timeout: the running step's first, in
# LOG_READ_SECONDS; the others in what is left. A hung step's output is where its cause
# is; a job's timeout-minutes above the sum of its waits leaves room for it.
TIMED_OUT_LOGS_SECONDS = 10.0
LOG_IDLE_SECONDS = 10.0  # a followed stream silent this long is re-opened if its step runs
FOLLOWER_JOIN_SECONDS = 0.5  # a stopped log follower is waited for this long, at most

# -- health checks (health.py) ------------------------------------------------------------
# The first request at once, then every 0.3 s for 60 s (an app that gets ready
# within a minute of its servers running, a JVM's start included, is seen within
# 0.3 s; about 200 requests to a health endpoint, which is cheap), then growing
# to every 3 s. No jitter: one job checks its own app, no herd to spread out.
HEALTH_POLLS = PollPolicy(first=0.3, steady=0.3, steady_until=60.0, factor=1.3, cap=3.0, jitter=0.0)
HEALTH_CONNECT_SECONDS = 3.0  # the app's host; a connect that takes longer will not pass
HEALTH_READ_SECONDS = 5.0  # the app's answer, and the few bytes of it kept for the log
DOMAIN_CHECK_SECONDS = 60.0  # the check through the domain after the switch: routing only

# -- the bake (steps/bake.py) -------------------------------------------------------------
# A round every 5 s (the official CLI's polling pace): one GET on the dev domain,
# one through the domain per workspace on the path, one read of the map; cheap
# for any app, and a failing app is seen within 5 s.
BAKE_CHECK_SECONDS = 5.0
# After an answer that is not accepted, the next round this soon: a blip is
# told from a failure in a second, not a whole interval later.
BAKE_RECHECK_SECONDS = 1.0
# Each request of a round is awaited this long: an app slower than that fails
# the check (a slow answer in production is a failing one). A round is up to
# (2 + N) requests (the map, the dev domain, one per workspace on the path), so
# with slow answers it may run past the next round's time, which then comes
# when it is done; none runs past bake-time's end: a round's requests are cut
# to it, and what that cuts off is not counted (the last round checks again).
BAKE_ANSWER_SECONDS = 3.0
# The last round, due when bake-time is over, has this long for its requests
# (one answer's wait): an app and an API that answer promptly need
# milliseconds, so the bake ends within a fraction of a second of bake-time.
BAKE_END_GRACE_SECONDS = 3.0

# -- GitHub bookkeeping (github_api.py) ---------------------------------------------------
GITHUB_CONNECT_SECONDS = 5.0
GITHUB_READ_SECONDS = 10.0
GITHUB_SECONDS = 30.0  # all of a run's bookkeeping at its start, and again at its end
GITHUB_MIN_SECONDS = 0.2  # a GitHub call with less time left than this is not sent
