"""Reading a stage log's server-sent events (SSE), from any thread, abortably.

Each stream has a session of its own, so a follower thread can read it while
the main thread makes other calls. Every connection that session opens is
kept (``AbortableSession``), so ``abort()`` from another thread shuts its
socket down at once (the TLS socket over https), whether the stream is still
waiting for its answer's headers or reading: the blocked ``recv`` returns and
the reader ends. Nothing waits for a lock; a connect or TLS handshake in
progress ends within its (short) connect timeout.

SSE is UTF-8 whatever the Content-Type says; lines end in CR, LF or CRLF
(sseclient-py splits the bytes, then decodes). ``data`` and ``message``
events carry ``[{"timestamp","kind","data"}]``; a ``problem`` event raises
ApiError. A broken or idle connection raises TransportError.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError

from ..errors import ApiError, BadAnswer, TransportError
from ..models import LogEntry
from ..timings import Deadline
from .answers import bad_log_answer, content_type, error_of
from .transport import USER_AGENT, Transport


class AbortableSession(requests.Session):
    """A session whose connections ``abort()`` shuts down from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = USER_AGENT
        # Bytes as they come: a compressed stream would be read undecoded.
        self.headers["Accept-Encoding"] = "identity"
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self.aborted = False
        adapter = _Adapter(self._register)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def _register(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            aborted = self.aborted
        if aborted:
            _shut(connection)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    """Shut the connection's socket down as it is now: over https the TLS
    socket, which wraps (and detaches) the plain one the connect made."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)


class _Adapter(HTTPAdapter):
    """Pools whose connections hand themselves to ``register`` once connected
    (over https: once the TLS handshake wrapped the socket)."""

    def __init__(self, register: Callable[[HTTPConnection], None]) -> None:
        self._register = register
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        register = self._register

        class Plain(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                register(self)

        class Secure(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                register(self)

        class PlainPool(HTTPConnectionPool):
            ConnectionCls = Plain

        class SecurePool(HTTPSConnectionPool):
            ConnectionCls = Secure

        self.poolmanager.pool_classes_by_scheme = {"http": PlainPool, "https": SecurePool}


def open_stream(
    transport: Transport,
    path: str,
    *,
    idle_timeout: float,
    deadline: Deadline,
    abort: Callable[[Callable[[], None]], None] | None = None,
) -> LogStream:
    """Open the SSE stream at ``path``: its answer awaited up to ``idle_timeout``
    within ``deadline``. ``abort``: given the stream's abort function before
    anything is sent, so another thread can end the opening too. Raises ApiError
    (or BadAnswer) for an error answer, TransportError when no answer came."""
    session = AbortableSession()
    if abort is not None:
        abort(session.abort)
    opened = transport.clock.now()
    try:
        response = transport.send(
            "GET",
            path,
            deadline=deadline,
            read_timeout=idle_timeout,
            stream=True,
            session=session,
            accept="text/event-stream",
        )
    except requests.RequestException as exc:
        session.close()
        if session.aborted:
            raise TransportError(f"GET {path}: aborted", maybe_landed=False) from None
        raise transport.transport_error("GET", path, exc, 1, opened) from None
    except BaseException:
        session.close()
        raise
    if response.status_code >= 400:
        error = error_of(transport.base_url, transport.reporter, "GET", path, response)
        if isinstance(error, BadAnswer):  # a page, not the API's problem JSON
            what = "HTML" if "html" in content_type(response) else "a body that is not JSON"
            error = bad_log_answer("GET", path, f"{response.status_code} and {what}")
        response.close()
        session.close()
        raise error
    return LogStream(transport, path, response, session)


class LogStream:
    """One open SSE connection with the log of one step.

    The thread that reads ``entries()`` owns the connection and closes it.
    ``abort()`` may be called from any other thread (module docstring)."""

    def __init__(
        self,
        transport: Transport,
        path: str,
        response: requests.Response,
        session: AbortableSession,
    ) -> None:
        self.transport = transport
        self.path = path
        self.response = response
        self.session = session
        kind = content_type(response)
        if kind and kind != "text/event-stream":
            self.close()
            raise bad_log_answer("GET", path, "HTML" if "html" in kind else kind)

    @property
    def aborted(self) -> bool:
        return self.session.aborted

    def abort(self) -> None:
        self.session.abort()

    def close(self) -> None:
        self.response.close()
        self.session.close()

    def set_idle(self, seconds: float) -> None:
        """From now on a read that gets no byte for ``seconds`` raises (idle)."""
        connection = getattr(self.response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(seconds)

    def entries(self, *, stop: Callable[[], bool] | None = None) -> Iterator[LogEntry]:
        """Yield log entries until the server ends the stream, or ``stop()`` says so
        (asked whenever bytes arrive, keep-alive comments too).

        SSE is UTF-8 whatever the Content-Type says; lines end in CR, LF or CRLF
        (sseclient-py splits the bytes, then decodes). ``data`` and ``message``
        events carry ``[{"timestamp","kind","data"}]``; a ``problem`` event raises
        ApiError. A broken or idle connection raises TransportError.
        """
        from sseclient import SSEClient  # noqa: PLC0415

        for event in SSEClient(self._utf8_chunks(stop)).events():
            if event.event == "problem":
                raise self._problem(event.data)
            if event.event not in ("data", "message"):
                continue
            try:
                payload = json.loads(event.data)
            except ValueError:
                self.transport.reporter.debug(f"{self.path}: skipped a log event that is not JSON")
                continue
            for item in payload if isinstance(payload, list) else [payload]:
                if isinstance(item, dict):
                    # "E"/"I" in the spec; "stderr"/"stdout" in a CLI test fixture.
                    kind = "E" if str(item.get("kind", "")).upper() in ("E", "STDERR") else "I"
                    yield LogEntry(kind, str(item.get("data", "")))

    def _utf8_chunks(self, stop: Callable[[], bool] | None) -> Iterator[bytes]:
        """The body's bytes as they arrive, made valid UTF-8 (an invalid byte becomes
        U+FFFD; a character split between chunks is kept whole), until EOF or
        ``stop()``."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        raw = self.response.raw
        while True:
            if stop is not None and stop():
                return
            try:
                chunk = raw.read1(8192, decode_content=True)
            except Exception as exc:  # noqa: BLE001 (urllib3's ProtocolError, ReadTimeoutError, OSError...)
                if self.aborted:
                    return
                idle = isinstance(exc, (ReadTimeoutError, TimeoutError))
                what = "was silent too long" if idle else f"broke ({type(exc).__name__})"
                raise TransportError(
                    f"GET {self.path}: the log stream {what}", maybe_landed=False, idle=idle
                ) from None
            if not chunk:
                text = decoder.decode(b"", final=True)
                if text:
                    yield text.encode()
                return
            text = decoder.decode(chunk)
            if text:
                yield text.encode()

    def _problem(self, data: str) -> ApiError:
        try:
            problem = json.loads(data)
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        status = problem.get("status")
        return ApiError.of(
            "GET",
            self.path,
            status if isinstance(status, int) else 200,  # a problem event of a 200 stream
            str(problem.get("title") or problem.get("reason") or "problem"),
            str(problem.get("detail") or ""),
            str(problem.get("traceId") or ""),
        )
