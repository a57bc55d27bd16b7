"""Unit tests of what the adversarial review of issue 19 found where a unit test
is sharper than a run of the action. Each fails on main at 9aed795.

- over https (the real API's scheme) ``AbortableSession.abort`` cannot end a
  stream: it shuts down the plain socket that ``_new_conn`` handed over, which
  the TLS wrap has detached, so a follower blocked in a read or still waiting
  for its answer runs on until its idle timeout;
- the health check reads a failing answer's body for a fresh 5 s, whatever the
  health check's own deadline leaves.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from codesphere_action.api.codesphere import Codesphere
from codesphere_action.api.transport import Transport
from codesphere_action.clock import SystemClock
from codesphere_action.config import load_config
from codesphere_action.cues import Cue, StepFollower
from codesphere_action.health import HealthCheck, HealthCheckFailed
from codesphere_action.timings import Deadline
from codesphere_action.waiting import Waiter

from .fakes import capture_reporter

# -- a TLS server that answers a log stream and then says nothing ----------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and key, one PEM) for 127.0.0.1."""
    where = tmp_path_factory.mktemp("tls")
    pem = where / "server.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(where / "key.pem"),
            "-out",
            str(where / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.write_text((where / "cert.pem").read_text() + (where / "key.pem").read_text())
    return pem


class TLSServer(ThreadingHTTPServer):
    """Answers every GET over https: "silent" sends the stream's headers, then
    nothing; "hang" sends no answer at all (a stream still opening)."""

    daemon_threads = True

    def __init__(self, mode: str, pem: Path) -> None:
        self.mode = mode
        self.paths: list[str] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pem))
        self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/api"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (the point of these tests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TLSServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.server.mode == "silent":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
        self.server.release.wait(30)
        self.close_connection = True


@pytest.fixture
def tls_server(
    request: pytest.FixtureRequest, certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TLSServer]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))  # requests trusts it
    srv = TLSServer(request.param, certificate)
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def followers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("follow-") and t.is_alive()]


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("tls_server", ["silent", "hang"], indirect=True)
def test_over_https_stop_ends_a_follower_at_once(tls_server: TLSServer) -> None:
    """The same as test_cues.py's stop tests, over https: ``stop()`` must end the
    follower's stream at once (its socket shut down), whether the stream is
    being read or still waiting for its answer. Over https the shutdown hits
    the detached plain socket (EBADF, suppressed) and the follower stays
    blocked until its 8 s idle timeout."""
    reporter, _ = capture_reporter()
    transport = Transport(
        tls_server.url, "tok-review19-1234", reporter=reporter, clock=SystemClock()
    )
    steps = StepFollower(Codesphere(transport), 3, "prepare", Cue(), idle_seconds=8.0)
    steps.want(0)
    assert wait_for(lambda: tls_server.paths), "the follower never sent its request"
    time.sleep(0.2)  # blocked in its read (of the stream, or of the answer's headers)
    steps.stop()
    assert wait_for(lambda: not followers(), timeout=1.0), (
        "the follower is still blocked reading its https stream after stop()"
    )


@pytest.mark.parametrize("tls_server", ["silent"], indirect=True)
def test_over_https_abort_ends_a_blocked_read_of_a_log_stream(tls_server: TLSServer) -> None:
    """``LogStream.abort()`` from another thread ends a read blocked on a silent
    https stream (api/logstream.py: "the blocked recv returns and the reader
    ends")."""
    reporter, _ = capture_reporter()
    transport = Transport(
        tls_server.url, "tok-review19-1234", reporter=reporter, clock=SystemClock()
    )
    stream = Codesphere(transport).open_log_stream(
        3, "prepare", 0, idle_timeout=8.0, deadline=Deadline.after(8.0, SystemClock())
    )
    ended = threading.Event()

    def read() -> None:
        try:
            for _entry in stream.entries():
                pass
        except Exception:
            pass
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.2)
    began = time.monotonic()
    stream.abort()
    assert ended.wait(1.0), "abort() did not end the read of the https stream"
    assert time.monotonic() - began < 1.0
    stream.close()


# -- the health check's body read and its deadline ----------------------------------------------


class DripServer(ThreadingHTTPServer):
    """Answers 503 at once, then sends its body one byte every 0.2 s (a slow
    proxy page, an app that streams its error)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), _Drip)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the health check closed the connection mid-body


class _Drip(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DripServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.flush()
        try:
            while not self.server.stop.wait(0.2):
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


@pytest.fixture
def drip() -> Iterator[DripServer]:
    srv = DripServer()
    yield srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


def test_the_health_check_ends_within_its_deadline_whatever_the_body_does(
    drip: DripServer,
) -> None:
    """health-check-timeout 1 s; the app answers 503 at once and drips its body.
    The check must fail about 1 s in; it reads the body for a fresh
    HEALTH_READ_SECONDS (5 s) after the deadline (health.py's ``_excerpt`` gets
    ``Deadline.after(HEALTH_READ_SECONDS, ...)``, not the check's deadline)."""
    environ = {
        "INPUT_API-TOKEN": "cs-health-token-review19",
        "INPUT_FLOW": "rollback",
        "INPUT_TEAM-ID": "7",
        "INPUT_WORKSPACE-ID": "1001",
        "INPUT_DOMAIN": "shop.example.com",
        "INPUT_HEALTH-CHECK-PATH": "/healthz",
        "INPUT_HEALTH-CHECK-TIMEOUT": "1s",
    }
    config = load_config(environ)
    reporter, _ = capture_reporter()
    clock = SystemClock()
    check = HealthCheck(config, reporter, Waiter(clock))
    began = time.monotonic()
    with pytest.raises(HealthCheckFailed):
        check.workspace(drip.host, Deadline.after(config.health.timeout, clock))
    took = time.monotonic() - began
    check.close()
    assert took < 2.0, f"the 1 s health check took {took:.1f} s"
