"""dry-run: the guarantee at the transport. A write attempted in a dry run is a
bug, and fails loudly before anything is sent (issue 21)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import requests

from codesphere_action import main as main_module
from codesphere_action.api.transport import Transport
from codesphere_action.context import Context
from codesphere_action.errors import WriteInDryRun
from codesphere_action.github import Reporter
from codesphere_action.timings import Deadline
from emulator.runner import parse_outputs

from .fakes import FakeClock

TOKEN = "tok-dry-run-unit-7a1c"


class NoNetwork(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(f"{method!s} {url!s}")
        raise AssertionError("no request may be sent")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_read_only_transport_refuses_every_write_before_sending_it(method: str) -> None:
    clock, session = FakeClock(), NoNetwork()
    transport = Transport(
        "https://cloud.codesphere.com/api",
        TOKEN,
        reporter=Reporter(io.StringIO()),
        clock=clock,
        session=session,
        read_only=True,
    )
    with pytest.raises(WriteInDryRun, match=f"{method} /workspaces/1 in a dry run"):
        transport.call(method, "/workspaces/1", deadline=Deadline.after(5, clock), idempotent=True)
    assert session.sent == []


def test_a_read_only_transport_still_reads() -> None:
    clock, session = FakeClock(), NoNetwork()
    transport = Transport(
        "https://cloud.codesphere.com/api",
        TOKEN,
        reporter=Reporter(io.StringIO()),
        clock=clock,
        session=session,
        read_only=True,
    )
    with pytest.raises(AssertionError, match="no request may be sent"):
        transport.send("GET", "/workspaces/1", deadline=Deadline.after(5, clock))
    assert session.sent == ["GET https://cloud.codesphere.com/api/workspaces/1"]


def test_a_flow_that_writes_in_a_dry_run_is_a_bug_that_fails_the_step(tmp_path: Path) -> None:
    def careless(ctx: Context) -> None:
        ctx.client.delete_workspace(1, deadline=ctx.deadline(5))

    output = tmp_path / "output"
    stream = io.StringIO()
    code = main_module.main(
        {
            "INPUT_API-TOKEN": TOKEN,
            "INPUT_API-URL": "http://127.0.0.1:9/api",
            "INPUT_WORKSPACE-ID": "1",
            "INPUT_DRY-RUN": "true",
            "GITHUB_OUTPUT": str(output),
        },
        stream,
        flows={"simple": careless},
    )
    log = stream.getvalue()
    assert code == 1
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, log
    assert "DELETE /workspaces/1 in a dry run" in errors[0]
    assert "This is a bug in codesphere-release" in errors[0]
    assert parse_outputs(output.read_text())["status"] == "failed"
