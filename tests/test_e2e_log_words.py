"""End to end: what the log and the summary say when nothing went wrong (issue 23).

- A single-server workspace has no landscape to deploy: the log says nothing
  of it (the debug log does); a multi-server workspace's deploy is shown.
- Counts read as words: "1 request", "3 requests", never "request(s)".
- A phase that took a few milliseconds is "under 0.1 s", not "0.0 s", and
  so is a total.
"""

from __future__ import annotations

import re

from codesphere_action.github import count, format_seconds
from emulator import Emulator
from emulator.runner import TOKEN, Runner

TEAM = 7


def _simple(emu: Emulator, workspace_id: int, **more: str) -> dict[str, str]:
    return {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(workspace_id), **more}


def test_a_single_server_workspace_says_nothing_of_a_landscape(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    result = runner.run(_simple(emu, ws))
    assert result.status == "success", result.stdout
    assert "andscape" not in result.stdout
    assert "multi-server" not in result.stdout
    debug = runner.run(_simple(emu, ws), {"RUNNER_DEBUG": "1"})
    assert debug.status == "success", debug.stdout
    (line,) = [line for line in debug.stdout.splitlines() if "Landscape" in line]
    assert line.startswith("::debug::") and "not a multi-server workspace" in line


def test_a_multi_server_workspace_shows_its_landscape_deploy(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop", landscape="multi", servers=["web", "worker"])
    result = runner.run(_simple(emu, ws))
    assert result.status == "success", result.stdout
    assert "Landscape deployed from ci.yml" in result.stdout


def test_counts_are_words(emu: Emulator, runner: Runner) -> None:
    emu.serve_apps(statuses=[200])
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    once = runner.run(_simple(emu, ws, **{"health-check-path": "/healthz"}))
    assert once.status == "success", once.stdout
    assert "(1 request)" in once.stdout
    assert "| 200 after 1 request |" in once.summary
    emu.configure_app(ws, statuses=[500, 500, 200])
    thrice = runner.run(_simple(emu, ws, **{"health-check-path": "/healthz"}))
    assert thrice.status == "success", thrice.stdout
    assert "(3 requests)" in thrice.stdout
    assert "| 200 after 3 requests |" in thrice.summary
    for run in (once, thrice):
        assert "(s)" not in run.stdout + run.summary


def test_a_quick_phase_is_not_shown_as_zero_seconds(emu: Emulator, runner: Runner) -> None:
    emu.add_workspace(team_id=TEAM, name="shop-pr-5")
    result = runner.run(
        {
            "api-token": TOKEN,
            "api-url": emu.url,
            "flow": "teardown",
            "team-id": str(TEAM),
            "workspace-name": "shop-pr-5",
        }
    )
    assert result.status == "success", result.stdout
    assert "0.0 s" not in result.stdout + result.summary
    total = re.search(r"^\| \*\*Total\*\* \| \| \*\*(.*?)\*\* \| \|$", result.summary, re.M)
    assert total, result.summary
    assert total.group(1) == "under 0.1 s" or float(total.group(1).split()[0]) >= 0.1


def test_format_seconds_and_count() -> None:
    assert [format_seconds(s) for s in (0.0, 0.049, 0.05, 1.25, 59.9, 61, 3600)] == [
        "under 0.1 s",
        "under 0.1 s",
        "0.1 s",
        "1.2 s",
        "59.9 s",
        "1 min 01 s",
        "60 min 00 s",
    ]
    assert [count(n, "request") for n in (0, 1, 2)] == ["0 requests", "1 request", "2 requests"]
    assert count(1, "replica") == "1 replica" and count(3, "attempt") == "3 attempts"
