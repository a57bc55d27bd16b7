"""HTTP plumbing: listeners (threads, prompt shutdown) and the request handler."""

from __future__ import annotations

import contextlib
import json
import select
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Emulator


class SSEWriter:
    """Writes one SSE stream as HTTP/1.1 chunks: ``writer(event, data)`` sends an event
    (``data`` as JSON, UTF-8, non-ASCII unescaped), ``writer.comment(text)`` a ``: text``
    line. Every line ends in ``line_ending``. Raising ``OSError`` inside the stream
    function cuts the connection without the chunked terminator."""

    def __init__(self, handler: Handler, line_ending: str = "\n") -> None:
        self.handler = handler
        self.line_ending = line_ending

    def __call__(self, event: str, data: Any) -> None:
        end = self.line_ending
        payload = json.dumps(data, ensure_ascii=False)
        self._chunk(f"event: {event}{end}data: {payload}{end}{end}".encode())

    def comment(self, text: str) -> None:
        self._chunk(f": {text}{self.line_ending}".encode())

    def _chunk(self, chunk: bytes) -> None:
        wfile = self.handler.wfile
        wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        wfile.flush()

    def client_gone(self) -> bool:
        """True once the client closed its end (a silent stream notices no broken pipe)."""
        conn = self.handler.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            peeked: bytes = conn.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except (OSError, ValueError):
            return True


Emit = Callable[[str, Any], None]
Stream = Callable[[SSEWriter], None]


@dataclass
class Reply:
    """What a handler answers: JSON (``body``), raw bytes, or an SSE stream."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    stream: Stream | None = None
    line_ending: str = "\n"  # of an SSE stream
    checked: bool = True  # False: not in the spec on purpose (no response violation)
    # The answer in the spec's terms, checked instead of ``body`` when a variant
    # plays values the spec does not list on purpose (unlisted stage states).
    spec_body: Any = None


class Listener(ThreadingHTTPServer):
    """One listening socket; shares the emulator's state with its siblings."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, emulator: Emulator, name: str, host: str, port: int) -> None:
        self.emulator = emulator
        self.name = name
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        super().__init__((host, port), Handler)
        self.port: int = self.server_address[1]
        self.host = host
        self._loop = threading.Thread(
            target=self._serve, name=f"emulator-{name}-{self.port}", daemon=True
        )
        self._loop.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self._stopping:
                        return
                    try:
                        request, address = self.get_request()
                    except OSError:
                        continue
                    self.process_request(request, address)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_request, args=(request, client_address), daemon=True
        )
        with self._conn_lock:
            if self._stopping:
                request.close()
                return
            self._conns.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _run_request(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client going away is not an emulator error
            pass
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._handler_threads.discard(threading.current_thread())
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are normal here (clients time out, tests drop sockets)."""

    def stop(self) -> None:
        """Stop accepting, cut open connections, wait briefly for handler threads."""
        with self._conn_lock:
            self._stopping = True
            conns = list(self._conns)
            threads = list(self._handler_threads)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._loop.join(timeout=2)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=2)
        self.server_close()
        self._wake_r.close()
        self._wake_w.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "codesphere-emulator/1"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: Listener

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in ``Emulator.requests``."""

    def do_GET(self) -> None:
        self.server.emulator._serve_http(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- helpers used by the emulator ------------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def drop(self) -> None:
        """Close the connection without a single byte of response."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_reply(self, reply: Reply) -> None:
        if reply.stream is not None:
            self._send_stream(reply)
            return
        if reply.raw is not None:
            payload = reply.raw
        elif reply.body is None:
            payload = b""
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_stream(self, reply: Reply) -> None:
        assert reply.stream is not None
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        try:
            reply.stream(SSEWriter(self, reply.line_ending))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            # cut (a proxy, close(), the client left): no terminator, close the connection
            self.close_connection = True
