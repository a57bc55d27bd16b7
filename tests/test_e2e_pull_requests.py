"""End to end: pull requests as they really arrive (issue 18).

The preview and teardown flows against the emulator and the fake GitHub API,
one test per defect the issue found: forks under every event, the event's
action, overlapping previews, a teardown racing a create, a promote of another
repository's workspace, bookkeeping that touches only its own deployments and
comment (whoever wrote the others, however many there are), and a head branch
deleted after the push.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.github import BOT_LOGIN, FakeGitHub
from emulator.runner import ActionRun, Runner, mark

from .test_e2e_preview import preview_inputs, previews, teardown_inputs
from .test_e2e_rollback import live_setup, rollback_inputs, start_run_stages
from .test_e2e_zero_downtime import DOMAIN, TEAM

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


# -- 3. two overlapping runs for one pull request end with one preview ---------------------------


def until(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(runner: Runner, proc: subprocess.Popen[str]) -> ActionRun:
    stdout, stderr = proc.communicate(timeout=60)
    return runner.result(proc.returncode, stdout, stderr, 0.0)


@pytest.mark.parametrize("ending", ["both-finish", "first-cancelled"])
def test_two_overlapping_runs_end_with_one_preview_and_both_report_it(
    emu: Emulator, tmp_path: Path, github: FakeGitHub, ending: str
) -> None:
    """Run 101's create is slow: run 102 lists the team meanwhile, finds no preview and
    creates one, which lands first. Run 101's lands second: it finds the older preview,
    takes it over (its mark), deletes its own, and updates the older one. Run 102's
    work on it is cut short (101 restarts its stages) or cancelled, and its cleanup
    never deletes what 101 took over. (Ids handed out on arrival, where the slow
    create has the lower id: test_e2e_review.py.)"""
    emu.set_branch_head(BRANCH, HEAD)
    # Run 101's create commits 3 s after it arrived: run 102 (started once it arrived)
    # has listed the team and created its own by then, even on a loaded machine.
    # 102's prepare lasts long enough to be under way when 101 takes its preview over.
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 4.0}})
    emu.add_fault("delay", method="POST", path=r"^/workspaces$", seconds=3.0, times=1)
    if ending == "first-cancelled":
        # Run 101 holds on after taking the preview over, while 102 is still at work.
        emu.add_fault("delay", method="POST", path=r"/git/pull", seconds=3.0, times=1)
    for run in (101, 102):
        (tmp_path / str(run)).mkdir()
    runners = {run: Runner(tmp_path / str(run)) for run in (101, 102)}

    def start(run: int) -> subprocess.Popen[str]:
        runner = runners[run]
        extra = {**pr_event(runner, action="synchronize"), "GITHUB_RUN_ID": str(run)}
        return runner.start(
            preview_inputs(emu, **{"github-token": GH_TOKEN}), with_github(github, extra)
        )

    first = start(101)
    second: subprocess.Popen[str] | None = None
    try:
        until(lambda: emu.find_requests("POST", "^/workspaces$"), "run 101's create")
        second = start(102)
        until(lambda: len(emu.workspaces(TEAM, name=PREVIEW)) == 1, "run 102's create")
        (older,) = emu.workspaces(TEAM, name=PREVIEW)
        if ending == "first-cancelled":
            until(
                lambda: "run=101.1" in older.env.get("CODESPHERE_RELEASE", ""),
                "run 101 taking the older preview over",
            )
            cancelled, _took = runners[102].cancel(second, signal.SIGINT)
            results = {101: finish(runners[101], first), 102: cancelled}
        else:
            results = {101: finish(runners[101], first), 102: finish(runners[102], second)}
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert previews(emu) == [older.id], [r.stdout for r in results.values()]
    assert not emu.workspace(older.id).deleted
    (twin,) = [w.id for w in emu.workspaces(TEAM, include_deleted=True) if w.id != older.id]
    assert emu.workspace(twin).deleted  # run 101's own, made in vain
    for run, result in results.items():
        assert result.outputs["workspace-id"] == str(older.id), (run, result.stdout)
        assert "Traceback" not in result.stdout + result.stderr
        result.assert_no_token()
    assert results[101].status == "success", results[101].stdout
    assert results[101].returncode == 0
    if ending == "first-cancelled":
        assert results[102].status in ("cancelled", "skipped"), results[102].stdout
    else:
        assert results[102].status in ("success", "skipped"), results[102].stdout
    assert emu.workspace(older.id).env["CODESPHERE_RELEASE"].count("run=101.1") == 1
    run_stage = emu.stage_run(older.id, "run")
    assert run_stage is not None and run_stage.up_at is not None
    # One comment, by the run that holds the preview; a run that stopped because
    # another took its preview over leaves its deployment inactive, not failed.
    (comment,) = github.comments_of(PR)
    assert "### ✅ Preview ready" in comment["body"]
    assert f"`{older.id}`" in comment["body"]
    for deployment in github.deployments.values():
        assert deployment.states[0] == "in_progress"
        assert deployment.states[-1] in ("success", "inactive", "failure")
    by_run = {d.statuses[0]["log_url"].rsplit("/", 1)[-1]: d for d in github.deployments.values()}
    assert by_run["101"].states[-1] == "success"
    expected = {"skipped": "inactive", "success": "success", "cancelled": "failure"}
    assert by_run["102"].states[-1] == expected[results[102].status]


# -- 4. a preview whose pull request closed while its create was under way -------------------


def test_a_preview_whose_pull_request_closed_meanwhile_is_deleted(
    emu: Emulator, runner: Runner, github: FakeGitHub, tmp_path: Path
) -> None:
    """The teardown runs (outside the preview's concurrency group) while the preview's
    create is under way: it finds nothing. The preview run asks GitHub at its end,
    learns the pull request closed, and deletes what it made."""
    emu.set_branch_head(BRANCH, HEAD)
    emu.add_fault("delay", method="POST", path=r"^/workspaces$", seconds=1.5, times=1)
    inputs = preview_inputs(emu, **{"github-token": GH_TOKEN})
    proc = runner.start(inputs, with_github(github, pr_event(runner)))
    try:
        until(lambda: emu.find_requests("POST", "^/workspaces$"), "the preview's create")
        github.set_pull(PR, state="closed")
        (tmp_path / "teardown").mkdir()
        closing = Runner(tmp_path / "teardown")
        teardown = closing.run(
            teardown_inputs(emu, **{"github-token": GH_TOKEN}),
            extra=with_github(github, pr_event(closing, action="closed")),
        )
        assert teardown.status == "success", teardown.stdout
        assert "already gone" in teardown.stdout  # the create had not landed yet
        result = finish(runner, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert result.returncode == 0, result.stdout
    assert result.status == "skipped", result.stdout
    (workspace,) = emu.workspaces(TEAM, name=PREVIEW, include_deleted=True)
    assert workspace.deleted  # nothing keeps running for the closed pull request
    assert previews(emu) == []
    (notice,) = notices(result)
    assert f"Pull request #{PR} was closed while this run worked on its preview" in notice
    assert f"deleted workspace {workspace.id}" in notice
    assert f"GET /repos/acme/shop/pulls/{PR}" in github.summaries()
    assert github.comments_of(PR) == []  # no comment about a preview that is gone
    result.assert_no_token()
    result.assert_no_token(GH_TOKEN)


def test_a_pull_request_github_cannot_tell_about_keeps_the_preview_with_a_warning(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    github.fail("GET", rf"/pulls/{PR}$", 403)
    result = runner.run(
        preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner)),
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    (warning,) = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert f"could not ask GitHub whether pull request #{PR} was closed" in warning
    assert "pull-requests: read" in warning
    assert len(previews(emu)) == 1


# -- 5. promote or roll back to a workspace another repository released --------------------


@pytest.mark.parametrize("flow", ["promote", "rollback"])
@pytest.mark.parametrize("require_commit", ["false", "true"])
def test_another_repositorys_workspace_is_named_and_refused_with_require_commit(
    emu: Emulator, runner: Runner, flow: str, require_commit: str
) -> None:
    _blue, green, api = live_setup(emu)
    foreign = emu.add_workspace(team_id=TEAM, name="app-4b825dc", env=mark(repo="other/app"))
    start_run_stages(emu, foreign)
    emu.clear_requests()
    result = runner.run(
        rollback_inputs(emu, foreign, flow=flow, **{"require-commit": require_commit})
    )
    assert "moved on" not in result.stdout
    said = (
        f"workspace {foreign} was created by codesphere-release for the repository other/app, "
        "not for acme/shop"
    )
    if require_commit == "true" and flow == "rollback":
        # A rollback goes back on purpose: require-commit is an input error (issue 17).
        assert result.status == "failed"
        error = result.assert_one_error()
        assert "input 'require-commit' is 'true'" in error
        assert emu.requests == []
    elif require_commit == "true":
        assert result.status == "failed"
        error = result.assert_one_error()
        assert said in error and "require-commit is true" in error
        assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}
        assert not emu.find_requests("PUT", r"/workspace-connections$")
    else:
        assert result.returncode == 0, result.stdout
        (warning,) = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
        assert "W" + said[1:] in warning
        assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [foreign], "/api": [api]}
    result.assert_no_token()


# -- 6. teardown marks inactive only this pull request's deployments ------------------------


@pytest.mark.parametrize("environment", ["preview", "production"])
def test_teardown_marks_inactive_only_its_own_pull_requests_deployments(
    emu: Emulator, runner: Runner, github: FakeGitHub, environment: str
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    shared = {"github-token": GH_TOKEN, "deployment-environment": "preview", "prepare": "false"}
    for number in (PR, 8):  # two pull requests' previews share the environment "preview"
        result = runner.run(
            preview_inputs(emu, **shared),
            extra=with_github(github, pr_event(runner, number=number)),
        )
        assert result.status == "success", result.stdout
    mine, eight = github.deployments.values()
    assert (mine.states[-1], eight.states[-1]) == ("success", "success")
    production = github.add_deployment("production", ref="f" * 40)
    other_app = github.add_deployment(
        "preview", payload={"codesphere-release": {"pr": PR, "workspace": "admin-pr-5"}}
    )
    for _ in range(120):  # a busy environment: this pull request's deployment is on page 2
        github.add_deployment(
            "preview", payload={"codesphere-release": {"pr": 9, "workspace": "shop-pr-9"}}
        )
    before = {d.id: list(d.states) for d in github.deployments.values()}

    result = runner.run(
        teardown_inputs(emu, **{"github-token": GH_TOKEN, "deployment-environment": environment}),
        extra=with_github(github, pr_event(runner, action="closed")),
    )
    assert result.status == "success", result.stdout
    changed = {d.id for d in github.deployments.values() if d.states != before[d.id]}
    if environment == "preview":
        assert changed == {mine.id}
        assert mine.states[-1] == "inactive"
    else:
        assert changed == set()  # never production's, never another environment's
    assert github.deployments[production].states == []
    assert github.deployments[other_app].states == []
    assert "::warning" not in result.stdout
    result.assert_no_token(GH_TOKEN)


# -- 7. the comment: never a person's, one per app ------------------------------------------


@pytest.mark.parametrize("identity", ["app", "user"], ids=["github-token", "personal-token"])
def test_the_comment_is_never_a_persons_and_each_app_keeps_its_own(
    emu: Emulator, runner: Runner, identity: str
) -> None:
    """Two apps of one repository preview pull request 5 (two workspace-names); a
    person quotes the first app's comment, marker and all. Each app keeps editing
    its own comment; the person's is never touched."""
    emu.set_branch_head(BRANCH, HEAD)
    apps = {"shop": {}, "admin": {"workspace-name": "admin-pr-5"}}
    with FakeGitHub(token=GH_TOKEN, identity=identity) as github:

        def push(app: str, sha: str) -> None:
            inputs = preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN}, **apps[app])
            result = runner.run(inputs, extra=with_github(github, pr_event(runner, sha=sha)))
            assert result.status == "success", result.stdout
            assert "::warning" not in result.stdout, result.stdout

        push("shop", HEAD)
        push("admin", HEAD)
        shop, admin = github.comments_of(PR)
        assert "(shop-pr-5)" in shop["body"] and "(admin-pr-5)" in admin["body"]
        assert shop["user"] == admin["user"] == github.me
        quoted = shop["body"].splitlines()[0] + "\nWhy does the preview say this?"
        person = github.add_comment(PR, quoted, user="mallory")
        other_bot = github.add_comment(PR, quoted, user="dependabot[bot]", user_type="Bot")

        pushed = "d" * 40
        emu.set_branch_head(BRANCH, pushed)
        push("shop", pushed)
        push("admin", pushed)
        if identity == "user":  # the token's own identity is known: only its comments
            assert github.comments[other_bot]["body"] == quoted
        assert github.comments[person]["body"] == quoted
        assert len(github.comments_of(PR)) == 4
        edited = {c["id"]: c["body"] for c in github.comments_of(PR)}
        assert f"`{pushed[:7]}`" in edited[shop["id"]] and "(shop-pr-5)" in edited[shop["id"]]
        assert f"`{pushed[:7]}`" in edited[admin["id"]] and "(admin-pr-5)" in edited[admin["id"]]


# -- 8. the comment is found whatever the number of comments --------------------------------


@pytest.mark.parametrize("before", [0, 620], ids=["first-comment", "after-620"])
def test_the_comment_is_found_on_a_busy_pull_request(
    emu: Emulator, runner: Runner, github: FakeGitHub, before: int
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    github.add_comments(PR, before)  # the discussion before the first preview
    inputs = preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN})
    first = runner.run(inputs, extra=with_github(github, pr_event(runner)))
    assert first.status == "success", first.stdout
    github.add_comments(PR, 640 - before)  # and after it: 641 comments in all
    listing = f"GET /repos/acme/shop/issues/{PR}/comments"
    for sha in ("d" * 40, "e" * 40):
        emu.set_branch_head(BRANCH, sha)
        seen = len(github.requests)
        again = runner.run(inputs, extra=with_github(github, pr_event(runner, sha=sha)))
        assert again.status == "success", again.stdout
        # the first page, then the last (where a comment made late is): no more
        assert [r.summary for r in github.requests[seen:]].count(listing) <= 2
    ours = [c for c in github.comments_of(PR) if c["user"] == github.me]
    assert len(ours) == 1, [c["id"] for c in ours]
    assert "`eeeeeee`" in ours[0]["body"]
    assert len(github.comments_of(PR)) == 641
    teardown = runner.run(
        teardown_inputs(emu, **{"github-token": GH_TOKEN}),
        extra=with_github(github, pr_event(runner, action="closed")),
    )
    assert teardown.status == "success", teardown.stdout
    assert "### 🗑️ Preview deleted" in github.comments[ours[0]["id"]]["body"]


def test_a_token_whose_identity_github_cannot_say_makes_no_second_comment(
    emu: Emulator, runner: Runner
) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    with FakeGitHub(token=GH_TOKEN, identity="user") as github:
        inputs = preview_inputs(emu, prepare="false", **{"github-token": GH_TOKEN})
        first = runner.run(inputs, extra=with_github(github, pr_event(runner)))
        assert first.status == "success", first.stdout
        github.fail("GET", r"^/user$", 502)
        again = runner.run(inputs, extra=with_github(github, pr_event(runner)))
        assert again.status == "success", again.stdout
        assert "::warning title=Pull request comment::" in again.stdout
        assert len(github.comments_of(PR)) == 1


def test_a_comment_of_an_older_version_is_taken_over_by_one_app(
    emu: Emulator, runner: Runner, github: FakeGitHub
) -> None:
    """Before the marker named the app it was ``<!-- codesphere-release:preview -->``:
    the first app to find no comment of its own takes that one over, the next makes
    its own."""
    emu.set_branch_head(BRANCH, HEAD)
    old = github.add_comment(
        PR,
        "<!-- codesphere-release:preview -->\n### ✅ Preview ready",
        user=BOT_LOGIN,
        user_type="Bot",
    )
    for name in (PREVIEW, "admin-pr-5"):
        result = runner.run(
            preview_inputs(
                emu, prepare="false", **{"github-token": GH_TOKEN, "workspace-name": name}
            ),
            extra=with_github(github, pr_event(runner)),
        )
        assert result.status == "success", result.stdout
    taken, made = github.comments_of(PR)
    assert taken["id"] == old
    assert taken["body"].startswith(f"<!-- codesphere-release:preview workspace={PREVIEW} -->\n")
    assert made["body"].startswith("<!-- codesphere-release:preview workspace=admin-pr-5 -->\n")


# -- 9. a head branch deleted after the push -------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["create-refused", "create-without-clone", "update"],
)
def test_a_head_branch_that_no_longer_exists_is_named(
    emu: Emulator, runner: Runner, case: str
) -> None:
    """Codesphere's answer to a create on a branch that does not exist is not
    documented: it may refuse it (400), or make a workspace without a clone. A
    later push's pull of a branch that is gone answers 400 "git error"."""
    gone = "gone-branch"
    emu.set_branch_head(gone, None)
    emu.set_variants(missing_branch="refuse" if case == "create-refused" else "no_clone")
    existing = None
    if case == "update":
        existing = emu.add_workspace(
            team_id=TEAM, name=PREVIEW, branch=gone, env=mark(flow="preview", pr=PR)
        )
    result = runner.run(preview_inputs(emu), extra=pr_event(runner, ref=gone, action="synchronize"))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert f"pull request #{PR}'s head branch {gone} no longer exists" in error
    assert "deleted after the push?" in error
    assert "push the branch again" in error
    if existing is None:
        assert previews(emu) == []  # nothing made, or what was made deleted
    else:
        assert previews(emu) == [existing]  # a failed update never deletes the preview
    assert not emu.find_requests("POST", r"/pipeline/")  # no stage ran on nothing
    result.assert_no_token()
