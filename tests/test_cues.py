"""The step-end cue against a tiny local SSE server: streams that end, stay open
silently, or break; stopping never blocks; each step's end is cued once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from codesphere_action.api.codesphere import Codesphere
from codesphere_action.api.transport import Transport
from codesphere_action.clock import SystemClock
from codesphere_action.cues import Cue, StepFollower

from .fakes import capture_reporter


class SSEServer(ThreadingHTTPServer):
    """Answers every log request with an SSE stream that does what ``mode`` says:
    "end" (one event, then the end), "silent" (headers, then nothing until
    released), "break" (one event, then a cut connection), "hang" (no answer at
    all until released: a stream still opening)."""

    daemon_threads = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.paths: list[str] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SSEServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.server.mode == "hang":
            self.server.release.wait(30)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b'event: data\ndata: [{"kind":"I","data":"x"}]\n\n'
        mode = self.server.mode
        if mode in ("end", "break"):
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        if mode == "end":
            self.wfile.write(b"0\r\n\r\n")
        elif mode == "silent":
            self.wfile.flush()
            self.server.release.wait(30)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[SSEServer]:
    srv = SSEServer(request.param)
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def follower(server: SSEServer, idle: float = 10.0) -> tuple[StepFollower, Cue]:
    reporter, _ = capture_reporter()
    transport = Transport(server.url, "tok-cue-1234", reporter=reporter, clock=SystemClock())
    client = Codesphere(transport)
    cue = Cue()
    return StepFollower(client, 3, "prepare", cue, idle_seconds=idle), cue


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("server", ["end", "break"], indirect=True)
def test_a_stream_that_ends_or_breaks_cues_a_poll_once_per_step(server: SSEServer) -> None:
    steps, cue = follower(server)
    steps.want(0)
    assert cue.wait(5)
    cue.clear()
    steps.want(0)  # followed already: no second stream, no second cue
    time.sleep(0.2)
    steps.stop()
    assert server.paths == ["/api/workspaces/3/logs/prepare/0"]
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_stopping_a_silent_stream_never_blocks_and_cues_nothing(server: SSEServer) -> None:
    steps, cue = follower(server)
    steps.want(0)
    wait_for(lambda: server.paths)
    time.sleep(0.1)  # the follower is blocked reading the silent stream
    began = time.monotonic()
    steps.stop()
    assert time.monotonic() - began < 0.05
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("follow-")])
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["hang"], indirect=True)
def test_stop_ends_and_joins_a_follower_still_waiting_for_its_answer(server: SSEServer) -> None:
    """A stream whose answer has not come yet (headers pending) is aborted too:
    stop() shuts its socket down and joins the thread at once."""
    steps, cue = follower(server)
    steps.want(0)
    wait_for(lambda: server.paths)
    time.sleep(0.1)  # the follower is blocked waiting for the answer's headers
    began = time.monotonic()
    steps.stop()
    assert time.monotonic() - began < 0.3
    assert not [t for t in threading.enumerate() if t.name.startswith("follow-")]
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_a_later_step_aborts_the_stream_of_the_step_before(server: SSEServer) -> None:
    steps, cue = follower(server)
    steps.want(0)
    wait_for(lambda: len(server.paths) == 1)
    steps.want(1)
    wait_for(lambda: len(server.paths) == 2)
    wait_for(lambda: "follow-prepare-0" not in {t.name for t in threading.enumerate()})
    steps.stop()
    assert server.paths[1].endswith("/logs/prepare/1")
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_a_silent_stream_is_reopened_while_its_step_runs(server: SSEServer) -> None:
    steps, cue = follower(server, idle=0.2)
    steps.want(0)
    wait_for(lambda: len(server.paths) >= 3)  # re-opened after each idle timeout
    steps.want(None)  # the step is over: no more re-opening
    count = len(server.paths)
    time.sleep(0.5)
    steps.stop()
    assert len(server.paths) <= count + 1
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["end"], indirect=True)
def test_a_stream_that_ended_while_its_step_runs_on_stops_all_cues(server: SSEServer) -> None:
    """A status that lags the stream's end gets one more look; then cues stop."""
    steps, cue = follower(server)
    steps.want(0)
    assert cue.wait(5)
    cue.clear()
    steps.want(0)  # the next poll: step 0 still runs although its stream ended...
    assert steps.cues_trusted  # ...but the status may lag: the next poll decides
    assert steps.cue_was_wrong  # (this poll takes a scheduled one's place)
    steps.want(0)  # it still runs: this installation's streams end early
    assert not steps.cues_trusted
    steps.want(1)
    time.sleep(0.2)
    steps.stop()
    assert server.paths == ["/api/workspaces/3/logs/prepare/0"]  # not worth opening any more
    assert not cue.is_set()


@pytest.mark.parametrize("server", ["end"], indirect=True)
def test_a_status_that_lags_the_streams_end_keeps_the_cues(server: SSEServer) -> None:
    steps, cue = follower(server)
    steps.want(0)
    assert cue.wait(5)
    cue.clear()
    steps.want(0)  # the status has not caught up yet
    steps.want(1)  # the next poll shows the next step: the stream had told the truth
    wait_for(lambda: len(server.paths) == 2)
    assert steps.cues_trusted and not steps.cue_was_wrong
    assert cue.wait(5)  # and the next step's end cues a poll again
    steps.stop()
