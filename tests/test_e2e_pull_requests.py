"""End to end: pull requests as they really arrive (issue 18).

The preview and teardown flows against the emulator and the fake GitHub API,
one test per defect the issue found: forks under every event, the event's
action, overlapping previews, a teardown racing a create, a promote of another
repository's workspace, bookkeeping that touches only its own deployments and
comment (whoever wrote the others, however many there are), and a head branch
deleted after the push.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .e2e import ActionRun, Runner, mark
from .emulator import Emulator
from .fake_github import FakeGitHub
from .pr_events import PR, PREVIEW, pr_event
from .test_e2e_preview import preview_inputs, previews, teardown_inputs
from .test_e2e_zero_downtime import TEAM

GH_TOKEN = "ghs_fakePullRequestToken0123456789"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=GH_TOKEN) as fake:
        fake.set_pull(PR)
        yield fake


def with_github(github: FakeGitHub, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, "GITHUB_API_URL": github.url}


def notices(result: ActionRun) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("::notice")]


def assert_skipped_before_any_request(result: ActionRun, emu: Emulator, github: FakeGitHub) -> str:
    """The run ended ``skipped`` with one notice, and asked neither Codesphere nor
    GitHub anything; returns the notice."""
    assert result.returncode == 0, result.stdout
    assert result.status == "skipped", result.stdout
    (notice,) = notices(result)
    assert notice.startswith("::notice title=Skipped::"), notice
    assert "::error" not in result.stdout and "::warning" not in result.stdout
    assert emu.requests == []
    assert github.requests == []
    assert "⏭️" in result.summary
    result.assert_no_token()
    result.assert_no_token(GH_TOKEN)
    return notice


# -- 1. a fork is never built, whatever the event -------------------------------------------


@pytest.mark.parametrize("flow", ["preview", "teardown"])
@pytest.mark.parametrize("event_name", ["pull_request_target", "pull_request"])
@pytest.mark.parametrize("head_repository", ["someone/shop", None], ids=["fork", "deleted-fork"])
@pytest.mark.parametrize("api_token", [True, False], ids=["token", "no-token"])
def test_a_fork_is_skipped_under_every_event_with_or_without_a_token(
    emu: Emulator,
    runner: Runner,
    github: FakeGitHub,
    flow: str,
    event_name: str,
    head_repository: str | None,
    api_token: bool,
) -> None:
    # A fork whose branch is called main (the base repository has a main too),
    # and a preview of that number teardown could take for the fork's.
    emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    emu.clear_requests()
    inputs = (preview_inputs if flow == "preview" else teardown_inputs)(
        emu, **{"github-token": GH_TOKEN, "secret-env": "DATABASE_URL=postgres://secret@db/x"}
    )
    if not api_token:
        inputs["api-token"] = ""  # pull_request runs of forks get no secrets
    extra = pr_event(
        runner,
        ref="main",
        action="closed" if flow == "teardown" else "synchronize",
        head_repository=head_repository,
        event_name=event_name,
    )
    result = runner.run(inputs, extra=with_github(github, extra))
    notice = assert_skipped_before_any_request(result, emu, github)
    source = (
        "the fork someone/shop"
        if head_repository
        else "a fork that was deleted (the event names no head repository)"
    )
    assert f"No {flow} for pull request #{PR}: it comes from {source}." in notice
    assert "whatever the event (pull_request_target included)" in notice
    assert "Nothing was sent to Codesphere" in notice
    assert "git-url" not in result.stdout
    assert all(not ws.deleted for ws in emu.workspaces(TEAM))


# -- 2. the event's action: never a preview for a closed pull request, never a teardown of an
# open one ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "action", "fix"),
    [
        ("preview", "closed", "if: github.event.action != 'closed'"),
        ("teardown", "synchronize", "types: [closed]"),
        ("teardown", "opened", "types: [closed]"),
        ("teardown", "reopened", "types: [closed]"),
    ],
)
def test_the_events_action_decides_and_one_line_says_what_to_change(
    emu: Emulator, runner: Runner, github: FakeGitHub, flow: str, action: str, fix: str
) -> None:
    preview = emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    emu.clear_requests()
    inputs = (preview_inputs if flow == "preview" else teardown_inputs)(
        emu, **{"github-token": GH_TOKEN}
    )
    result = runner.run(inputs, extra=with_github(github, pr_event(runner, action=action)))
    notice = assert_skipped_before_any_request(result, emu, github)
    assert "%0A" not in notice  # one line
    assert f"the event's action is '{action}'" in notice
    assert fix in notice
    assert not emu.workspace(preview).deleted
    assert previews(emu) == [preview]  # and nothing created
