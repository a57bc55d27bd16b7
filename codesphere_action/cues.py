"""End cues: learn that a step ended the moment it does, not at the next poll.

No document says when a step's log stream (SSE) ends: with the step, before
it (after its last line, or cut by a proxy), or never (silent, or with
keep-alive comments). ``StepFollower`` reads the stream of the step that is
running in a background thread, and when the server ends the stream (or it
breaks) it sets the cue, so the waiter polls at once. A cue only ever makes a
wait faster: the status poll decides what happened, and a stream that never
ends leaves the wait to its schedule.

Streams never hold the main thread up:
- a stream of a step that is over (a later step runs, or the stage ended) is
  aborted by ``want``/``stop``, which shut its sockets down (no lock, no wait),
  also while it is still opening (waiting for its answer);
- each read has an idle timeout; a stream that stays silent that long is
  re-opened only while its step still runs (a long step that prints nothing);
- ``stop`` joins the threads it aborted, for ``FOLLOWER_JOIN_SECONDS`` at
  most (a connect in progress ends within its own short timeout); they are
  daemons, so one that takes longer can never keep the process alive.
Each step's end is cued at most once, so a stream that ends early cannot cause
a poll storm. When the poll after a cue finds the step still running, the
status may just lag the stream's end: the next scheduled poll has the last
word. If the step still runs then, this installation's streams end early
(after their last line, or cut by a proxy), and no stream end cues a poll for
the rest of the run. A cue poll that found its step running takes a scheduled
poll's place, so wrong cues add no polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .api.codesphere import Codesphere
from .errors import TransportError
from .timings import FOLLOWER_JOIN_SECONDS, LOG_IDLE_SECONDS, Deadline


class Cue(threading.Event):
    """An event that remembers when it was last set (a poll begun after that has
    seen what it signals already)."""

    def __init__(self) -> None:
        super().__init__()
        self.at = float("-inf")

    def fire(self, now: float) -> None:
        self.at = now
        self.set()


class StepFollower:
    def __init__(
        self,
        client: Codesphere,
        workspace_id: int,
        stage: str,
        cue: Cue,
        idle_seconds: float = LOG_IDLE_SECONDS,
        *,
        trusted: bool = True,
    ) -> None:
        self.client = client
        self.workspace_id = workspace_id
        self.stage = stage
        self.cue = cue
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._wanted: int | None = None
        self._started: set[int] = set()
        # The abort of each step's stream (its session's), set before it is opened.
        self._aborts: dict[int, Callable[[], None]] = {}
        self._threads: list[threading.Thread] = []
        self._ended: set[int] = set()  # steps whose stream ended (a cue was set)
        self._rechecked: set[int] = set()  # ... whose step ran on at the poll after
        self._confirmed: set[int] = set()  # ... whose step was over at the next poll
        self._stopped = False
        self.cues_trusted = trusted

    def want(self, step: int | None) -> None:
        """The step the last poll saw running (None: none). Follow it unless it was
        followed before; abort the streams of every other step."""
        with self._lock:
            if self._stopped:
                return
            self._confirmed |= self._rechecked - {step}  # the step we doubted is over
            if step is not None and step in self._ended:
                if step in self._rechecked:
                    self.cues_trusted = False  # its stream ended, yet it still runs
                else:
                    self._rechecked.add(step)  # the status may lag: the next poll decides
            self._wanted = step
            stale = [abort for k, abort in self._aborts.items() if k != step]
            # Once stream ends cue nothing, a stream is not worth opening.
            thread = None
            if step is not None and step not in self._started and self.cues_trusted:
                self._started.add(step)
                thread = threading.Thread(
                    target=self._follow,
                    args=(step,),
                    name=f"follow-{self.stage}-{step}",
                    daemon=True,
                )
                self._threads.append(thread)
        for abort in stale:
            abort()
        if thread is not None:
            thread.start()

    @property
    def cue_was_wrong(self) -> bool:
        """Whether the last cue brought a poll that found its step still running
        (the poll then takes a scheduled poll's place: wrong cues add none)."""
        with self._lock:
            return not self.cues_trusted or bool(self._rechecked - self._confirmed)

    def stop(self) -> None:
        """Abort every stream, open or opening, and join the threads: within
        ``FOLLOWER_JOIN_SECONDS`` in all (a connect in progress ends within its
        own short timeout; the threads are daemons)."""
        with self._lock:
            self._stopped = True
            aborts = list(self._aborts.values())
            threads = list(self._threads)
        for abort in aborts:
            abort()
        until = Deadline.after(FOLLOWER_JOIN_SECONDS, self.client.clock)
        for thread in threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(until.left())

    def _register(self, step: int) -> Callable[[Callable[[], None]], None]:
        """What a stream being opened hands its abort to: kept for ``want`` and
        ``stop``, and called at once when the step is no longer wanted."""

        def register(abort: Callable[[], None]) -> None:
            with self._lock:
                self._aborts[step] = abort
                stopped = self._stopped or self._wanted != step
            if stopped:
                abort()

        return register

    def _still_wanted(self, step: int) -> bool:
        with self._lock:
            return not self._stopped and self._wanted == step

    def _follow(self, step: int) -> None:
        """Read the step's stream until the server ends it (cue), it breaks (cue),
        or the step is no longer wanted; re-open it after an idle timeout."""
        while self._still_wanted(step):
            try:
                stream = self.client.open_log_stream(
                    self.workspace_id,
                    self.stage,
                    step,
                    idle_timeout=self.idle_seconds,
                    deadline=Deadline.after(self.idle_seconds, self.client.clock),
                    abort=self._register(step),
                )
            except Exception:  # noqa: BLE001 (no cue is fine: the schedule still polls)
                break
            try:
                for _entry in stream.entries():
                    pass
            except TransportError as exc:
                if exc.idle and not stream.aborted:
                    continue  # silent for a while: re-open if the step still runs
            except Exception:  # noqa: BLE001, S110 (a broken stream is just an end)
                pass
            finally:
                with self._lock:
                    self._aborts.pop(step, None)
                stream.close()
            with self._lock:
                cue = not stream.aborted and self.cues_trusted and not self._stopped
                self._ended.add(step)
            if cue:
                self.cue.fire(self.client.clock.now())
            break
