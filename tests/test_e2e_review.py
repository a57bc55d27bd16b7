"""End to end: what an adversarial review of issues 17 and 18 found (d17ef9c).

Each test states what the action MUST do and fails against d17ef9c; the lead
fixes the code. Style as in test_e2e_inputs.py and test_e2e_pull_requests.py.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.github import FakeGitHub
from emulator.runner import ActionRun, Runner, mark

from .test_e2e_preview import preview_inputs, previews, teardown_inputs
from .test_e2e_rollback import live_setup as rollback_setup
from .test_e2e_rollback import rollback_inputs
from .test_e2e_zero_downtime import DOMAIN, TEAM, live_setup, zd_inputs

GH_TOKEN = "ghs_fakeReviewToken0123456789abcdef"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=GH_TOKEN) as fake:
        fake.set_pull(PR)
        yield fake


def with_github(github: FakeGitHub, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, "GITHUB_API_URL": github.url}


def until(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(runner: Runner, proc: subprocess.Popen[str]) -> ActionRun:
    stdout, stderr = proc.communicate(timeout=60)
    return runner.result(proc.returncode, stdout, stderr, 0.0)


def assert_never_shown(result: ActionRun, *parts: str) -> None:
    for part in parts:
        assert part not in result.stdout, f"{part!r} in the log:\n{result.stdout}"
        assert part not in result.stderr
        assert part not in result.summary, f"{part!r} in the summary"
        assert all(part not in value for value in result.outputs.values())


# -- 1. issue 17.2: the wrapped tail of a secret still becomes a variable name ---------------
# A Fernet key (URL-safe base64: '-' and '_', '=' padding) wrapped onto two lines, and a
# value put on the line after its name. Both "names" are parts of a secret.
FERNET_HEAD, FERNET_TAIL = "cw_0x689RpI-jtRR7o", "E8h_eQsKImvJapLeSbXpwF4e4"
BARE_TAIL = "QmFzZTY0VGFpbA-_xyzAB"  # a value on the line after "API_KEY="


@pytest.mark.parametrize(
    ("secret_env", "tail"),
    [
        (f"FERNET_KEY={FERNET_HEAD}\n{FERNET_TAIL}=", FERNET_TAIL),
        (f"API_KEY=\n{BARE_TAIL}=", BARE_TAIL),
    ],
    ids=["url-safe-base64-tail", "name-after-a-line-without-value"],
)
def test_the_wrapped_tail_of_any_secret_is_refused_and_never_printed(
    emu: Emulator, runner: Runner, secret_env: str, tail: str
) -> None:
    """Issue 17.2 asks to reject "a name that follows a line without a value, or a
    name that looks like the tail of a value". Only mixed-case alphanumeric tails of
    8+ characters with a digit are caught (BASE64_RUN): a URL-safe base64 tail
    ('-', '_') and any name after "NAME=" pass, become a Codesphere variable named
    after the secret, and the preview's update prints it in "Environment variables
    set: ..." (names are never masked)."""
    emu.set_branch_head(BRANCH, HEAD)
    emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    emu.clear_requests()
    result = runner.run(
        preview_inputs(emu, prepare="false", **{"secret-env": secret_env}),
        extra=pr_event(runner, action="synchronize"),
    )
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "input 'secret-env' is 'line 2'" in error
    assert_never_shown(result, tail)
    assert emu.requests == []


# -- 2. issue 17.6: require-commit passes when the deployed commit cannot be read ------------
def test_require_commit_refuses_a_promote_whose_deployed_commit_is_unknown(
    emu: Emulator, runner: Runner
) -> None:
    """promote swallows a failing git/head read as a warning ("the outputs are a
    courtesy"); check_commit then returns on an empty deployed-commit, so with
    require-commit: true a workspace whose commit nobody checked gets the domain.
    A check that cannot be made must fail the release before the switch."""
    blue, green, api = rollback_setup(emu)
    # e.g. a workspace made without a git repository: git calls answer 400
    emu.add_fault(
        "status", method="GET", path=rf"^/workspaces/{blue}/git/head$", status=400, times=None
    )
    result = runner.run(rollback_inputs(emu, blue, flow="promote", **{"require-commit": "true"}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "require-commit" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}
    assert not emu.find_requests("PUT", r"/workspace-connections$")


# -- 3. issue 18.3: "the lower id is the older preview" is an assumption ---------------------
def test_overlapping_previews_end_with_one_when_ids_follow_arrival_not_commit(
    emu: Emulator, tmp_path: Path
) -> None:
    """No document says how Codesphere assigns workspace ids. A database sequence
    hands an id out when the create's transaction starts, and the row shows up when it
    commits: a slow create that arrived first gets the LOWER id but becomes visible
    LAST. Then run 102 (fast create, higher id) looks for an older preview right after
    its create and finds none yet; run 101 (slow create, lower id) finds only a
    *newer* one, which _older_preview never considers (``workspace.id >= own.id:
    break``). Both keep their own: two previews of one pull request, both runs
    ``success`` with different workspace-ids, the defect issue 18.3 asked to end.
    The emulator plays it with the variant ``id_order="arrival"``."""
    emu.set_variants(id_order="arrival")
    emu.set_branch_head(BRANCH, HEAD)
    emu.add_fault("delay", method="POST", path=r"^/workspaces$", seconds=3.0, times=1)
    runners = {}
    for run in (101, 102):
        (tmp_path / str(run)).mkdir()
        runners[run] = Runner(tmp_path / str(run))

    def start(run: int) -> subprocess.Popen[str]:
        extra = {**pr_event(runners[run], action="synchronize"), "GITHUB_RUN_ID": str(run)}
        return runners[run].start(preview_inputs(emu, prepare="false"), extra)

    procs = [start(101)]
    try:
        until(lambda: emu.find_requests("POST", "^/workspaces$"), "run 101's create arrived")
        procs.append(start(102))
        results = {101: finish(runners[101], procs[0]), 102: finish(runners[102], procs[1])}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    created = [e.details["workspace_id"] for e in emu.events_of("workspace_created")]
    assert sorted(created) == [1001, 1002] and created[0] == 1002  # the slow one, lower id, last
    outcome = {run: (r.status, r.outputs.get("workspace-id")) for run, r in results.items()}
    assert len(previews(emu)) == 1, (previews(emu), outcome)
    (preview,) = previews(emu)
    for result in results.values():
        assert result.outputs["workspace-id"] == str(preview), outcome


# -- 4. cancelled while the new end-of-run GitHub check is in flight ----------------------
def slow_pull_request(github: FakeGitHub, seconds: float) -> threading.Event:
    """GET /pulls/{n} (the preview's end-of-run check) answers ``seconds`` late
    (held back before the fake takes its lock: other calls go on). The event is set
    when such a request arrives."""
    handle, arrived = github._handle, threading.Event()

    def slow(handler: Any) -> None:
        if handler.command == "GET" and "/pulls/" in handler.path:
            arrived.set()
            time.sleep(seconds)
        handle(handler)

    github._handle = slow  # type: ignore[method-assign]
    return arrived


def test_a_first_preview_cancelled_during_its_closed_check_is_cleaned_up_or_said_kept(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    """With github-token a preview asks GitHub, after the build, whether its pull
    request closed meanwhile (issue 18.4). That call is outside release()'s try
    block: a cancel while it is in flight (GitHub is slow: read timeout 10 s) ends the
    run ``cancelled`` with the workspace it created left running and not a word about
    it; a cancel one call earlier deletes it (clean_up). The run must either clean up
    what it created or say in its error that workspace N was kept and why."""
    emu.set_branch_head(BRANCH, HEAD)
    asked = slow_pull_request(github, 6.0)
    inputs = preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN})
    proc = runner.start(inputs, with_github(github, pr_event(runner)))
    try:
        until(asked.is_set, "the end-of-run pull request check")
        time.sleep(0.3)
        result, took = runner.cancel(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert took < 7.5, took
    assert result.status == "cancelled", result.stdout
    (created,) = emu.workspaces(TEAM, name=PREVIEW, include_deleted=True)
    error = result.assert_one_error()
    assert created.deleted or f"workspace {created.id}" in error.split("::", 2)[-1], (
        error,
        created.deleted,
    )


# -- 5. issue 17.11: text is cut before it is redacted, so the cut leaves part of a secret ----
# A long secret (a service-account JSON, a certificate bundle: issue 17 held 100 kB values)
# that the failing build prints.
LONG_SECRET = "".join(f"{n:04x}Zq" for n in range(1500))  # 9000 characters


def leaked_slices(text: str, secret: str, size: int = 40) -> list[str]:
    return [
        secret[i : i + size]
        for i in range(0, len(secret) - size, size)
        if secret[i : i + size] in text
    ]


def test_the_summary_cut_never_leaves_part_of_a_secret(emu: Emulator, runner: Runner) -> None:
    """render_summary bounds the message to MAX_LINE_BYTES (new in 17.11) before
    write_summary redacts it: the secret is no longer whole, so redact() misses it
    and ~4000 characters of it land in the job summary. (The ::error line redacts
    first, then cuts: it is safe.) github.py promises "Secrets are redacted before
    anything is cut, so a cut never leaves part of one"."""
    live_setup(emu)
    emu.defaults_for_new_workspaces(
        stages={"prepare": {"fail_step": 0, "error_lines": [f"bad config: KEY={LONG_SECRET}"]}}
    )
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **{"secret-env": f"SERVICE_ACCOUNT={LONG_SECRET}"}),
        timeout=60,
    )
    assert result.status == "failed", result.stdout
    assert LONG_SECRET not in result.summary
    assert leaked_slices(result.summary, LONG_SECRET) == [], "part of the secret in the summary"
    masks = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::")]
    log = "\n".join(line for line in result.stdout.splitlines() if line not in masks)
    assert leaked_slices(log, LONG_SECRET) == [], "part of the secret in the log"


def test_the_pull_request_comment_never_shows_part_of_a_secret(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    """The comment's "Why" row is cut to 300 characters in render(), and only then
    is the body redacted (PreviewComment.finish): a secret the failing build printed
    that straddles character 300 reaches the pull request's comment in part. On a
    public repository that comment is world-readable."""
    emu.set_branch_head(BRANCH, HEAD)
    secret = LONG_SECRET[:600]
    emu.defaults_for_new_workspaces(
        stages={"prepare": {"fail_step": 0, "error_lines": [f"bad config: KEY={secret}"]}}
    )
    result = runner.run(
        preview_inputs(
            emu, **{"github-token": GH_TOKEN, "secret-env": f"SERVICE_ACCOUNT={secret}"}
        ),
        extra=with_github(github, pr_event(runner)),
        timeout=60,
    )
    assert result.status == "failed", result.stdout
    (comment,) = github.comments_of(PR)
    assert "Why" in comment["body"]
    assert leaked_slices(comment["body"], secret, size=20) == [], comment["body"]


# -- 6. issue 18.3: the cleanup reads the mark, then lists the domains, then deletes ----------
def test_a_failed_first_run_never_deletes_the_preview_a_later_push_took_over_meanwhile(
    emu: Emulator, tmp_path: Path
) -> None:
    """README: "a preview another run took over is never deleted by the run it was
    taken from". The cleanup of a failed first run reads the mark (its own), then
    delete_unless_serving lists the team's domains, then deletes: a later push's run
    that takes the preview over while that list is under way (a busy API: 5 s) loses
    it. The later run then fails on 404s and the pull request has no preview. The
    mark must be read again after the domain list, right before the DELETE (and the
    window kept to one request)."""
    emu.set_branch_head(BRANCH, HEAD)
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0, "seconds": 0.3}})
    emu.add_fault("delay", method="GET", path=r"^/domains/team/\d+$", seconds=5.0, times=1)
    runners = {}
    for run in (101, 102):
        (tmp_path / str(run)).mkdir()
        runners[run] = Runner(tmp_path / str(run))
    first = runners[101].start(
        preview_inputs(emu),
        {**pr_event(runners[101], action="opened"), "GITHUB_RUN_ID": "101"},
    )
    second: subprocess.Popen[str] | None = None
    try:
        until(lambda: emu.find_requests("GET", r"^/domains/team/\d+$"), "run 101's cleanup")
        emu.set_branch_head(BRANCH, "d" * 40)  # the later push
        second = runners[102].start(
            preview_inputs(emu, prepare="false"),
            {**pr_event(runners[102], action="synchronize", sha="d" * 40), "GITHUB_RUN_ID": "102"},
        )
        results = {101: finish(runners[101], first), 102: finish(runners[102], second)}
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    (preview,) = emu.workspaces(TEAM, name=PREVIEW, include_deleted=True)
    assert "run=102.1" in preview.env.get("CODESPHERE_RELEASE", ""), preview.env
    assert results[101].status == "failed", results[101].stdout
    assert not preview.deleted, (
        results[101].stdout + "\n----- run 102 -----\n" + results[102].stdout
    )
    assert results[102].status == "success", results[102].stdout


# -- 7. issue 18.1: previews the previous version made for forks are never torn down -------
def test_a_forks_teardown_says_how_a_preview_an_earlier_version_made_goes(
    emu: Emulator, runner: Runner
) -> None:
    """Before this change a fork's pull request under pull_request_target got a
    "preview" (issue 18.1: rc 0, success). Now a fork's teardown is skipped before any
    request, with a notice that says "A fork's pull request never had a preview to
    delete": that preview (the action's own mark, this repository, this pull request)
    keeps running for good. Issue 18 asks that a fork's teardown be skipped before
    any request, whatever the event, so the teardown still deletes nothing; its notice
    must not say that nothing exists, and must say how such a preview goes."""
    made_before = emu.add_workspace(team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR))
    emu.clear_requests()
    result = runner.run(
        teardown_inputs(emu),
        extra=pr_event(
            runner,
            action="closed",
            head_repository="someone/shop",
            event_name="pull_request_target",
        ),
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "skipped"
    assert "never had a preview" not in result.stdout
    (notice,) = [line for line in result.stdout.splitlines() if line.startswith("::notice")]
    assert "delete it by hand" in notice and "flow: prune" in notice
    assert emu.requests == []  # nothing sent for a fork
    assert not emu.workspace(made_before).deleted
