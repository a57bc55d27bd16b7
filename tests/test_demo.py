"""The demo: its runner-log renderer (scripts/runner_log.py), and scripts/demo.py
run as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codesphere_action.flows.specs import FLOW_NAMES
from scripts.demo import FLOWS, HEADINGS, PARTS, PARTS_IN_ORDER, TOKEN
from scripts.runner_log import RunnerLog, parse_command, unescape_data, unescape_property

ROOT = Path(__file__).resolve().parent.parent


def render(*lines: str, debug: bool = False, color: bool = False) -> list[str]:
    return RunnerLog(debug=debug, color=color).feed_all(lines)


# -- masking -------------------------------------------------------------------


def test_add_mask_is_never_shown_and_masks_every_later_line() -> None:
    out = render(
        "before s3cr3t-value",
        "::add-mask::s3cr3t-value",
        "after s3cr3t-value and s3cr3t-value again",
        "::group::title s3cr3t-value",
        "::error title=T s3cr3t-value::msg s3cr3t-value",
    )
    assert out == [
        "before s3cr3t-value",  # the runner masks from the command on
        "after *** and *** again",
        "▼ title ***",
        "  Error: T ***: msg ***",
    ]


def test_masks_are_applied_longest_first_and_escaped_values_unescaped() -> None:
    out = render(
        "::add-mask::abc", "::add-mask::abcdef", "::add-mask::a%0Ab-line", "abcdef abc b-line"
    )
    assert out == ["*** *** ***"]


def test_an_empty_mask_is_refused_as_the_runner_does() -> None:
    assert render("::add-mask::  ") == [
        "Warning: Can't add secret mask for empty string in ##[add-mask] command."
    ]


def test_masks_apply_to_lines_printed_by_the_caller() -> None:
    log = RunnerLog()
    log.add_mask("tok-1")
    assert log.text("api-token: tok-1") == ["api-token: ***"]


# -- groups --------------------------------------------------------------------


def test_groups_become_a_header_and_indented_lines() -> None:
    out = render("start", "::group::Stage prepare", "step 1", "", "::endgroup::", "end")
    assert out == ["start", "▼ Stage prepare", "  step 1", "", "end"]


def test_a_new_group_ends_the_open_one_and_a_stray_endgroup_is_ignored() -> None:
    out = render("::group::A", "a", "::group::B", "b", "::endgroup::", "::endgroup::", "c")
    assert out == ["▼ A", "  a", "▼ B", "  b", "c"]


def test_group_headers_are_bold_only_with_colour() -> None:
    assert render("::group::A", color=True)[0] == "\033[1m▼ A\033[0m"


# -- annotations ---------------------------------------------------------------


def test_annotations_with_titles_and_escapes() -> None:
    out = render(
        "::error title=Stage failed%3A prepare%2C step 2"
        "::npm ERR! 100%25 broken%0Dat line 1%0Aline 2",
        "::warning::careful",
        "::notice title=Done::Released to https://x",
        "::error file=app.js,line=3,col=7::bad",
    )
    assert out == [
        "Error: Stage failed: prepare, step 2: npm ERR! 100% broken",
        "       at line 1",
        "       line 2",
        "Warning: careful",
        "Notice: Done: Released to https://x",
        "Error: bad (app.js:3:7)",
    ]


def test_annotation_colours() -> None:
    assert render("::warning::w", color=True) == ["\033[1;33mWarning:\033[0m w"]
    assert render("::error::e", color=True) == ["\033[1;31mError:\033[0m e"]


def test_unescaping_is_one_pass() -> None:
    assert unescape_data("%250A %0D%0A %3A") == "%0A \r\n %3A"
    assert unescape_property("%253A %3A%2C") == "%3A :,"


def test_parse_command() -> None:
    command = parse_command("  ::error title=a%2Cb,file=,=x,line=2::m::n")
    assert command is not None
    assert (command.name, command.properties, command.data) == (
        "error",
        {"title": "a,b", "line": "2"},
        "m::n",
    )
    assert parse_command("::set-everything::x") is None  # not a command: printed as it is
    assert parse_command("no :: command") is None
    assert parse_command("::group") is None


def test_an_unknown_command_is_printed_as_it_is() -> None:
    assert render("::frobnicate::x") == ["::frobnicate::x"]


# -- debug ---------------------------------------------------------------------


def test_debug_is_hidden_unless_asked_for() -> None:
    lines = ("::group::G", "::debug::GET /x -> 200%0Anext", "shown")
    assert render(*lines) == ["▼ G", "  shown"]
    assert render(*lines, debug=True) == [
        "▼ G",
        "  Debug: GET /x -> 200",
        "  Debug: next",
        "  shown",
    ]


# -- stop-commands -------------------------------------------------------------


def test_stop_commands_print_lines_verbatim_until_the_token() -> None:
    out = render(
        "::add-mask::hunter2",
        "::group::Log of prepare step 2",
        "::stop-commands::f00d",
        "::add-mask::not-a-mask",
        "::error::not an error %0A",
        "::endgroup::",
        "::group::not a group",
        "password hunter2",
        "::f00d::",
        "::warning::commands work again",
        "::endgroup::",
        "not-a-mask",
    )
    assert out == [
        "▼ Log of prepare step 2",
        "  ::add-mask::not-a-mask",
        "  ::error::not an error %0A",
        "  ::endgroup::",
        "  ::group::not a group",
        "  password ***",  # masking still applies
        "  Warning: commands work again",
        "not-a-mask",
    ]


def test_the_stop_token_must_match_the_whole_line() -> None:
    out = render(
        "::stop-commands::tok", "::tok::x", "x ::tok::", "::other::", " ::tok:: ", "::debug::d"
    )
    assert out == ["::tok::x", "x ::tok::", "::other::"]


def test_an_empty_stop_token_keeps_commands_on() -> None:
    out = render("::stop-commands::", "::warning::w")
    assert out == ["Warning: Invalid stop-commands token: it is empty.", "Warning: w"]


# -- the demo, as a newcomer runs it ----------------------------------------------


def run_demo(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), *args],
        cwd=ROOT,
        env={**env, "RUNNER_DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check_demo_output(
    result: subprocess.CompletedProcess[str], flows: list[str], failures: int = 0
) -> None:
    """``failures``: runs that fail on purpose (the failure part's)."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert TOKEN not in output
    assert "api-token: ***" in output  # shown, masked
    raw = [line for line in output.splitlines() if re.match(r"\s*::[a-z-]+( [^:]*)?::", line)]
    assert raw == [], "raw workflow commands in the output"
    assert "\033[" not in output  # no colours into a pipe
    for flow in flows:
        assert HEADINGS[flow] in output, f"no heading for {flow}"
    outputs_status = re.findall(r"^  status=(.*)$", output, re.M)  # the outputs blocks
    assert outputs_status
    assert outputs_status.count("failed") == failures
    assert outputs_status.count("success") == len(outputs_status) - failures
    assert "runs failed" not in output.splitlines()[-1]
    # As a user's log reads: no loopback address, no test seam, no emulator URL input.
    assert "127.0.0.1" not in output
    assert "CODESPHERE_RELEASE_RESOLVE" not in output
    assert "api-url:" not in output
    assert "(s)" not in output


def test_demo_without_arguments_runs_simple_and_names_the_others() -> None:
    result = run_demo(timeout=60)
    check_demo_output(result, ["simple"])
    assert "1 run succeeded in" in result.stdout
    assert (
        "More: scripts/demo zero-downtime, failure, canary, preview, teardown, promote, "
        "rollback, prune or all" in result.stdout
    )


@pytest.mark.slow
def test_demo_all_runs_every_flow() -> None:
    result = run_demo("all", timeout=110)
    check_demo_output(result, list(HEADINGS), failures=1)
    assert "11 runs succeeded and 1 run failed as it should" in result.stdout
    assert len(re.findall(r"^  status=success$", result.stdout, re.M)) == 11


def test_every_value_of_the_flow_input_is_a_demo() -> None:
    assert sorted(FLOWS) == sorted(FLOW_NAMES)
    assert set(PARTS) == set(PARTS_IN_ORDER) == {*FLOWS, "failure"}


def test_demo_failure_shows_the_failing_log_and_what_it_cleaned_up() -> None:
    """Failure is what people want to see before they trust a release tool: a
    test that fails, its log, the new workspace deleted, the domain untouched."""
    result = run_demo("failure", timeout=60)
    check_demo_output(result, ["failure"], failures=1)
    out = result.stdout
    assert "1 run failed as it should in" in out
    assert "▼ Log of test step 2" in out  # the failing step's own log, in a group
    assert "Tests: 1 failed, 41 passed, 42 total" in out
    assert "Error: Stage failed: stage test failed at step 2 of 2" in out
    assert "(failed, as it should)" in out
    assert "Afterwards: workspace 1002 is deleted" in out
    assert "Afterwards: shop.example.com/ is served by workspace 1001" in out


def test_the_demo_shows_names_where_the_emulator_listens_on_loopback() -> None:
    """zero-downtime reaches the apps and the domain through loopback listeners;
    the log reads as a user's: dev domains and the custom domain."""
    result = run_demo("zero-downtime", timeout=60)
    check_demo_output(result, ["zero-downtime"])
    assert "GET https://1002-3000.dc2.codesphere.test/healthz" in result.stdout
    assert "GET https://shop.example.com/healthz" in result.stdout
    assert "workspace-url=https://1002-3000.dc2.codesphere.test" in result.stdout


def test_demo_rollback_points_the_domain_back() -> None:
    result = run_demo("rollback", timeout=60)
    check_demo_output(result, ["rollback"])
    assert "1 run succeeded in" in result.stdout
    assert "flow: rollback" in result.stdout
    assert "previous-workspace-id=" in result.stdout


def test_demo_canary_bakes_then_completes() -> None:
    result = run_demo("canary", timeout=60)
    check_demo_output(result, ["canary"])
    assert "1 run succeeded in" in result.stdout
    assert "#### Bake: 4.0 s" in result.stdout
    assert "completed, / -> " in result.stdout


def test_demo_refuses_an_unknown_flow() -> None:
    result = run_demo("blue-green", timeout=30)
    assert result.returncode == 2
    assert "usage: scripts/demo" in result.stderr
    assert "invalid choice: 'blue-green'" in result.stderr
