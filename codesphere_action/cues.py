"""End cues: learn that a step ended the moment it does, not at the next poll.

A step's log stream (SSE) ends when the step ends. ``StepFollower`` reads the
stream of the step that is running in a background thread and sets the cue
when the stream ends, so the waiter polls at once. A cue only ever makes a
wait faster: the status poll that follows decides what happened, and a stream
that fails or never ends just leaves the wait to its schedule. Each step is
followed at most once, so a stream that ends early cannot cause a poll storm.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import requests

from .client import Client


def running_step(entry: dict[str, Any]) -> int | None:
    """Index of the first step that has not finished, or None when all have."""
    for index, step in enumerate(entry.get("steps") or []):
        if step.get("state") in ("running", "waiting"):
            return index
    return None


class StepFollower:
    def __init__(
        self, client: Client, workspace_id: int, stage: str, cue: threading.Event, timeout: float
    ) -> None:
        self.client = client
        self.workspace_id = workspace_id
        self.stage = stage
        self.cue = cue
        self.timeout = timeout
        self._followed: set[int] = set()
        self._responses: list[requests.Response] = []
        self._lock = threading.Lock()
        self._stopped = False

    def follow(self, step: int) -> None:
        """Start following ``step`` unless it was followed before."""
        with self._lock:
            if self._stopped or step in self._followed:
                return
            self._followed.add(step)
        threading.Thread(
            target=self._drain, args=(step,), name=f"follow-{self.stage}-{step}", daemon=True
        ).start()

    def _opened(self, response: requests.Response) -> None:
        with self._lock:
            self._responses.append(response)
            stopped = self._stopped
        if stopped:
            response.close()

    def _drain(self, step: int) -> None:
        try:
            for _entry in self.client.stream_logs(
                self.workspace_id, self.stage, step, read_timeout=self.timeout, on_open=self._opened
            ):
                if self._stopped:
                    return
        except Exception:  # noqa: BLE001, S110 (no cue is fine: the schedule still polls)
            pass
        finally:
            if not self._stopped:
                self.cue.set()

    def stop(self) -> None:
        """Close every open stream; threads end with them."""
        with self._lock:
            self._stopped = True
            responses, self._responses = self._responses, []
        for response in responses:
            with contextlib.suppress(Exception):
                response.close()
