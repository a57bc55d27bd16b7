"""main(): the one place a run ends."""

from __future__ import annotations

import io
from pathlib import Path

from codesphere_action import main as main_module
from emulator.runner import parse_outputs

TOKEN = "tok-main-unit-5e6f"


def test_an_unexpected_crash_shows_a_redacted_traceback_and_one_error(tmp_path: Path) -> None:
    def broken(_ctx: object) -> None:
        raise RuntimeError(f"boom while holding {TOKEN}")

    output = tmp_path / "output"
    stream = io.StringIO()
    code = main_module.main(
        {
            "INPUT_API-TOKEN": TOKEN,
            "INPUT_API-URL": "http://127.0.0.1:9/api",
            "INPUT_WORKSPACE-ID": "1",
            "GITHUB_OUTPUT": str(output),
        },
        stream,
        flows={"simple": broken},
    )
    log = stream.getvalue()
    assert code == 1
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: boom while holding ***" in log
    assert [line for line in log.splitlines() if TOKEN in line] == [f"::add-mask::{TOKEN}"]
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "This is a bug in codesphere-release" in errors[0]
    assert parse_outputs(output.read_text())["status"] == "failed"


def test_outputs_are_written_when_the_input_is_bad(tmp_path: Path) -> None:
    output = tmp_path / "output"
    code = main_module.main(
        {"INPUT_API-TOKEN": TOKEN, "INPUT_FLOW": "nope", "GITHUB_OUTPUT": str(output)},
        io.StringIO(),
    )
    assert code == 1
    outputs = parse_outputs(output.read_text())
    assert outputs["status"] == "failed"
    assert set(outputs) >= {"status", "workspace-id", "workspace-url", "deployed-commit"}
