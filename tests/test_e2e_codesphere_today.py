"""End to end: releasing on today's Codesphere (issue 20).

The official clients moved on, and so does the action:
- the default API address is ``https://cloud.codesphere.com/api`` (cs-go PR 250,
  the spec's server); the older ``https://codesphere.com/api`` keeps working.
  Without network, the default is seen through a local HTTPS proxy that
  records where the action connects (``CONNECT host:443``) and never speaks TLS.

Each test here failed before the change it covers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.runner import TOKEN, Runner


class ConnectRecorder:
    """An HTTPS proxy on loopback that records each ``CONNECT`` line and its
    headers, accepts it, then sends bytes that are not TLS: the client's
    handshake fails at once, and nothing ever leaves the machine."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []  # the request head, as received
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets(self) -> list[str]:
        """``CONNECT host:port`` of each request (the HTTP version left out)."""
        return [" ".join(head.split("\r\n", 1)[0].split()[:2]) for head in self.requests]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.decode("latin-1"))
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nnot TLS\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ConnectRecorder]:
    recorder = ConnectRecorder()
    yield recorder
    recorder.close()


def proxied(proxy: ConnectRecorder) -> dict[str, str]:
    return {"HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "NO_PROXY": ""}


# ---------------------------------------------------------------- the API address ------
def test_the_default_api_url_is_cloud_codesphere_com(
    tmp_path: Path, proxy: ConnectRecorder
) -> None:
    runner = Runner(tmp_path)
    result = runner.run(
        {"api-token": TOKEN, "workspace-id": "1001", "stage-timeout": "20s"},
        extra=proxied(proxy),
        timeout=40,
    )
    assert result.status == "failed", result.stdout
    assert proxy.targets, "the action never connected"
    assert set(proxy.targets) == {"CONNECT cloud.codesphere.com:443"}
    assert all(TOKEN not in head for head in proxy.requests)  # the proxy never sees it
    assert "https://cloud.codesphere.com/api" in result.assert_one_error()
    result.assert_no_token()


def test_the_old_api_url_is_still_accepted(tmp_path: Path, proxy: ConnectRecorder) -> None:
    runner = Runner(tmp_path)
    inputs = {"api-token": TOKEN, "api-url": "https://codesphere.com/api", "workspace-id": "1001"}
    result = runner.run(inputs, extra=proxied(proxy), timeout=40)
    assert result.status == "failed", result.stdout
    assert set(proxy.targets) == {"CONNECT codesphere.com:443"}
    result.assert_no_token()
