"""End to end: the fixes of the review of issue 23 beyond its own tests
(``test_e2e_review23.py``): a timed-out stage's words and logs, the log route
that fails, the inputs that settings leave unused.
"""

from __future__ import annotations

from emulator import Emulator
from emulator.runner import Runner

from .test_e2e_simple import simple_inputs

# -- a stage that timed out ----------------------------------------------------------------


def test_a_timed_out_stage_says_timed_out_and_no_failed_status_request(
    emu: Emulator, runner: Runner
) -> None:
    """The phase line and the summary's row said "failed" for status=timed-out, and
    the error added "the last status request failed: ... no time left to send it":
    the wait's own end, no failure of the API."""
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=30, steps=2)
    result = runner.run(simple_inputs(emu, ws, **{"stage-timeout": "3"}), timeout=40)
    assert result.status == "timed-out", result.stdout
    error = result.assert_one_error()
    assert "stage prepare did not finish within 3.0 s (last state: step 1 of 2 running)" in error
    assert "status request failed" not in error and "no time left" not in error, error
    assert any(
        line.startswith("Stage prepare: timed out in ") for line in result.stdout.splitlines()
    )
    assert "| Stage prepare | ⏱️ timed out |" in result.summary, result.summary
    assert "❌" not in result.summary, result.summary
