"""End to end: the behaviour issue 17 requires, one test (or parametrized test) per item.

Inputs real workflows pass and answers a busy platform gives. Each test states what
the action MUST do; they fail against the action as it was when they were written,
and pass once it is fixed. They assert only on outputs, the exit code, the emulator's
state and requests, and a few stable phrases of the log and the ``::error`` line.
"""

from __future__ import annotations

import re

import pytest

from emulator import Emulator
from emulator.events import PR, pr_event
from emulator.runner import SHA, ActionRun, Runner, mark

from .test_e2e_rollback import rollback_inputs, start_run_stages
from .test_e2e_simple import simple_inputs
from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, created, live_setup, zd_inputs

PASSWORD = "s3cr3tPassw0rd"


def assert_never_shown(result: ActionRun, *parts: str) -> None:
    """None of ``parts`` is anywhere in the log, the summary or the outputs."""
    for part in parts:
        assert part not in result.stdout, f"{part!r} in the log:\n{result.stdout}"
        assert part not in result.stderr
        assert part not in result.summary, f"{part!r} in the summary"
        assert all(part not in value for value in result.outputs.values())


# ------------------------------------------------ 1. a secret printed in an error --------
def test_a_yaml_style_secret_env_line_is_never_echoed(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    line = f"DATABASE_URL: postgres://admin:{PASSWORD}@db.internal/app?sslmode=require"
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"secret-env": line}))
    assert result.returncode != 0
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'secret-env' is 'line 1'" in error
    assert "NAME=value" in error
    # No part of the line: not the password, not the "name", not the host.
    assert_never_shown(result, PASSWORD, "DATABASE_URL", "postgres://", "db.internal", "sslmode")
    assert emu.requests == []


# ------------------------------------------------ 2. a wrapped secret as a name ----------
def test_the_wrapped_tail_of_a_secret_is_refused_naming_only_the_line(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **{"secret-env": f"DB_PASSWORD=hunter\n{PASSWORD}=="})
    )
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'secret-env' is 'line 2'" in error
    assert "NAME<<EOF" in error
    assert_never_shown(result, PASSWORD, "DB_PASSWORD", "hunter")
    assert emu.requests == []


def test_an_indented_continuation_of_a_value_is_refused_naming_the_lines(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    secret = f"API_KEY=abc123\n  {PASSWORD}=tail"
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"secret-env": secret}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'secret-env' is 'line 2'" in error and "line 1" in error
    assert_never_shown(result, PASSWORD, "API_KEY", "abc123", "tail")
    assert emu.requests == []


# ------------------------------------------------ 3. multi-line values -------------------
PEM_LINES = [
    "-----BEGIN PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
    "-----END PRIVATE KEY-----",
]


def test_a_multi_line_secret_in_the_runners_heredoc_form_is_set_and_masked_line_by_line(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    pem = "\n".join(PEM_LINES)
    secret_env = f"TLS_KEY<<PEM_END\n{pem}\nPEM_END\nOTHER=after-the-key"
    env = "BANNER<<EOF\nline one\n  line two, indented\nEOF"
    result = runner.run(zd_inputs(emu, domain=DOMAIN, env=env, **{"secret-env": secret_env}))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    variables = emu.workspace(new).env
    assert variables["TLS_KEY"] == pem
    assert variables["OTHER"] == "after-the-key"
    assert variables["BANNER"] == "line one\n  line two, indented"
    masks = {line[len("::add-mask::") :] for line in result.stdout.splitlines()}
    for pem_line in PEM_LINES:
        assert pem_line in masks, f"line not masked: {pem_line}"
        for line in result.stdout.splitlines():
            assert pem_line not in line or line == f"::add-mask::{pem_line}", line
    for pem_line in PEM_LINES[1:4]:
        assert pem_line not in result.summary
        assert all(pem_line not in value for value in result.outputs.values())
    result.assert_no_token()


def test_a_quoted_value_that_does_not_close_on_its_line_says_how_to_pass_one(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    secret_env = 'GOOD=1\nTLS_KEY="' + "\n".join(PEM_LINES) + '"'
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"secret-env": secret_env}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'secret-env' is 'line 2'" in error
    assert "NAME<<EOF" in error
    assert_never_shown(result, "TLS_KEY", PEM_LINES[1])
    assert emu.requests == []


# ------------------------------------------------ 4. a deleted workspace on the path -----
def test_a_deleted_workspace_on_the_path_is_not_previous(emu: Emulator, runner: Runner) -> None:
    gone = emu.add_workspace(team_id=TEAM, name="shop-deleted-by-hand", env=mark())
    live = emu.add_workspace(team_id=TEAM, name="shop-live", env=mark())
    emu.add_domain(TEAM, DOMAIN, {"/": [gone, live]})
    emu.workspace(gone).deleted = True  # deleted by hand in Codesphere; the map still lists it
    emu.check_domain_workspaces = False  # this installation accepts such a map
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}))
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}
    assert result.outputs["previous-workspace-id"] == str(live)
    assert emu.workspace(live).deleted
    assert not emu.find_requests(path=rf"/workspaces/{gone}(/.*)?")
    assert f"workspace {gone}" in result.stdout  # the log says what it left out


def test_the_rollback_hint_lists_only_workspaces_that_exist_in_a_form_rollback_takes(
    emu: Emulator, runner: Runner
) -> None:
    gone = emu.add_workspace(team_id=TEAM, name="shop-deleted-by-hand", env=mark())
    blue = emu.add_workspace(team_id=TEAM, name="shop-blue", env=mark())
    green = emu.add_workspace(team_id=TEAM, name="shop-green", env=mark())
    start_run_stages(emu, blue, green)
    emu.add_domain(TEAM, DOMAIN, {"/": [gone, blue, green], "/api": [green]})
    emu.workspace(gone).deleted = True
    emu.check_domain_workspaces = False
    # Deleting blue fails after the switch: the release fails with a way back.
    emu.add_fault("status", method="DELETE", path=rf"^/workspaces/{blue}$", status=403, times=None)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert f"To go back: flow: rollback with workspace-id {blue},{green}" in error
    assert str(gone) not in error
    assert result.outputs["previous-workspace-id"] == f"{blue},{green}"

    emu.clear_faults()
    back = runner.run(rollback_inputs(emu, blue, **{"workspace-id": f"{blue},{green}"}))
    assert back.returncode == 0, back.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [blue, green], "/api": [green]}
    assert back.outputs["workspace-id"] == f"{blue},{green}"


# ------------------------------------------------ 5. a deleted workspace on another path --
def test_a_deleted_workspace_on_another_path_is_a_warning_before_the_build(
    emu: Emulator, runner: Runner
) -> None:
    _old, api = live_setup(emu)
    emu.workspace(api).deleted = True
    emu.check_domain_workspaces = False  # Codesphere takes the map as it is
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    # Another path is not the release's to change: it is written back as it was.
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    (warning,) = [line for line in warnings if str(api) in line]
    assert "/api" in warning
    assert result.stdout.index(warning) < result.stdout.index("::group::Create workspace")


def test_a_map_refused_for_a_deleted_workspace_on_another_path_names_path_and_id(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live_setup(emu)
    emu.workspace(api).deleted = True
    assert emu.check_domain_workspaces  # Codesphere refuses a map with an unknown id
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "/api" in error and str(api) in error
    assert "remove it from the domain in Codesphere" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    (new,) = created(emu)
    assert emu.workspace(new).deleted  # the refusal was definite: nothing serves it


# ------------------------------------------------ 7. /api/ and /api ----------------------
@pytest.mark.parametrize(("key", "given"), [("/api", "/api/"), ("/api/", "/api")])
def test_a_path_with_or_without_its_trailing_slash_switches_the_existing_key(
    emu: Emulator, runner: Runner, key: str, given: str
) -> None:
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    api = emu.add_workspace(team_id=TEAM, name="shop-api")
    emu.add_domain(TEAM, DOMAIN, {"/": [old], key: [api]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"domain-path": given}))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], key: [new]}
    assert result.outputs["previous-workspace-id"] == str(api)
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/api"


def test_a_path_that_differs_only_in_case_is_refused_before_the_build(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live_setup(emu)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"domain-path": "/API"}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "'/API'" in error and "'/api'" in error
    assert created(emu) == []
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}


# ------------------------------------------------ 8. the domain as the API spells it -----
def test_the_domain_is_used_as_the_api_spells_it(emu: Emulator, runner: Runner) -> None:
    emu.set_variants(domain_match="exact")  # the API's routes take the name as it lists it
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    emu.add_domain(TEAM, "Shop.Example.com", {"/": [old]})
    result = runner.run(zd_inputs(emu, domain="shop.example.com"))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, "Shop.Example.com").workspaces == {"/": [new]}
    (put,) = emu.find_requests("PUT", r".*/workspace-connections")
    assert "/domain/Shop.Example.com/" in put.path
    assert result.outputs["domain-url"] == "https://Shop.Example.com/"
    # The way back finds it the same way.
    start_run_stages(emu, old)
    back = runner.run(rollback_inputs(emu, old, domain="shop.example.com"))
    assert back.returncode == 0, back.stdout
    assert emu.domain(TEAM, "Shop.Example.com").workspaces == {"/": [old]}
    assert back.outputs["previous-workspace-id"] == str(new)


def test_an_internationalised_domain_is_used_in_its_ascii_form(
    emu: Emulator, runner: Runner
) -> None:
    emu.set_variants(domain_match="exact")
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    emu.add_domain(TEAM, "xn--bcher-kva.example.com", {"/": [old]})
    result = runner.run(zd_inputs(emu, domain="bücher.example.com"))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, "xn--bcher-kva.example.com").workspaces == {"/": [new]}
    assert result.outputs["domain-url"] == "https://xn--bcher-kva.example.com/"
    assert any(
        "xn--bcher-kva.example.com" in line and "bücher.example.com" in line
        for line in result.stdout.splitlines()
    )


# ------------------------------------------------ 6. require-commit ----------------------
@pytest.mark.parametrize(
    ("flow", "branch"), [("simple", ""), ("simple", "release"), ("zero-downtime", "release")]
)
def test_require_commit_compares_with_github_sha_whatever_the_branch(
    emu: Emulator, runner: Runner, flow: str, branch: str
) -> None:
    emu.set_branch_head(branch or "main", "b" * 40)  # the branch moved on to bbbbbbb
    inputs = {"require-commit": "true", **({"branch": branch} if branch else {})}
    if flow == "simple":
        ws = emu.add_workspace(team_id=TEAM, name="shop")
        result = runner.run(simple_inputs(emu, ws, **inputs))
    else:
        live_setup(emu)
        result = runner.run(zd_inputs(emu, domain=DOMAIN, **inputs))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "bbbbbbb" in error and SHA[:7] in error and "require-commit" in error
    assert result.outputs["deployed-commit"] == "b" * 40
    if flow == "simple":  # right after the pull: nothing was rebuilt
        assert not emu.find_requests("POST", r"/workspaces/\d+/pipeline/.*")
    assert not emu.find_requests("PUT", r".*/workspace-connections")


@pytest.mark.parametrize(
    ("flow", "extra", "says"),
    [
        ("simple", {"GITHUB_SHA": ""}, "GITHUB_SHA"),
        ("zero-downtime", {"GITHUB_SHA": "not-a-sha"}, "GITHUB_SHA"),
        ("rollback", {}, "rollback"),
    ],
)
def test_require_commit_without_a_commit_to_compare_is_an_input_error(
    emu: Emulator, runner: Runner, flow: str, extra: dict[str, str], says: str
) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    emu.add_domain(TEAM, DOMAIN, {"/": [ws]})
    inputs = {
        "simple": simple_inputs(emu, ws),
        "zero-downtime": zd_inputs(emu, domain=DOMAIN, **{"workspace-name": "shop-v2"}),
        "rollback": rollback_inputs(emu, ws),
    }[flow]
    result = runner.run({**inputs, "require-commit": "true"}, extra=extra)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "input 'require-commit' is 'true'" in error and says in error
    assert emu.requests == []


# ------------------------------------------------ 9. states outside the spec's list ------
@pytest.mark.parametrize("flow", ["simple", "zero-downtime"])
def test_states_the_spec_does_not_list_neither_end_a_release_nor_blame_api_url(
    emu: Emulator, runner: Runner, flow: str
) -> None:
    # "pending" for every waiting entry and step; "skipped" for the last step of
    # every successful entry.
    emu.set_variants(waiting_state="pending", skipped_steps=True)
    if flow == "simple":
        ws = emu.add_workspace(team_id=TEAM, name="shop")
        result = runner.run(simple_inputs(emu, ws, test="true"))
    else:
        live_setup(emu)
        result = runner.run(zd_inputs(emu, domain=DOMAIN, test="true"))
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert "api-url" not in result.stdout
    lines = result.stdout.splitlines()
    for stage in ("prepare", "test", "run"):
        said = [line for line in lines if line.startswith(f"{stage}: ") and "'pending'" in line]
        assert len(said) == 1, f"{stage}: {said}"
    skipped = [line for line in lines if "'skipped'" in line]
    assert 1 <= len(skipped) <= 2, skipped  # once per stage it showed in (prepare, test)


def test_an_unknown_state_that_never_ends_is_bounded_by_the_stage_timeout(
    emu: Emulator, runner: Runner
) -> None:
    emu.set_variants(waiting_state="pending")
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    emu.configure_stage(ws, "run", seconds=30)  # its servers stay "pending" for 30 s
    result = runner.run(simple_inputs(emu, ws, prepare="false", **{"stage-timeout": "3s"}))
    assert result.status == "timed-out", result.stdout
    error = result.assert_one_error()
    assert "stage run did not finish within 3.0 s" in error
    assert "pending" in error and "api-url" not in error
    assert result.seconds < 3 + 3


# ------------------------------------------------ 10. one 500 on an idempotent read ------
def test_one_500_on_the_domain_read_before_the_switch_is_retried(
    emu: Emulator, runner: Runner
) -> None:
    _old, api = live_setup(emu)
    fault = emu.add_fault(
        "status", method="GET", path=r"^/domains/team/\d+/domain/[^/]+$", status=500
    )
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert fault.hits == 1
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}


def test_a_500_on_a_create_is_not_repeated_blindly(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    emu.add_fault("status_after", method="POST", path=r"^/workspaces$", status=500)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert result.returncode == 0, result.stdout
    assert len(emu.find_requests("POST", "/workspaces")) == 1  # looked up, not sent again
    assert len(created(emu)) == 1


# ------------------------------------------------ 11. a 3 MB log line --------------------
LINE_BYTES = 4096


def test_a_3_mb_log_line_is_cut_in_every_line_the_annotation_and_the_summary(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    huge = "npm ERR! " + "x" * 3_000_000
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0, "error_lines": [huge]}})
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert result.status == "failed"
    error = result.assert_one_error()
    assert error.startswith("::error title=Stage failed::stage prepare failed")
    assert "characters cut" in error
    for line in result.stdout.splitlines():
        if not line.startswith("::add-mask::"):
            assert len(line.encode()) <= LINE_BYTES, f"a line of {len(line)} characters"
    assert any(
        "npm ERR! xxx" in line and "characters cut" in line
        for line in result.stdout.splitlines()[:-1]
    )
    assert len(result.stdout.encode()) < 64 * 1024
    assert len(result.summary.encode()) <= 512 * 1024
    assert "characters cut" in result.summary


# ------------------------------------------------ 12. the runner's files -----------------
def unwritable(runner: Runner, how: str) -> str:
    if how == "directory":
        path = runner.tmp / "a-directory"
        path.mkdir()
        return str(path)
    return "/dev/full"  # opens, then every write fails (ENOSPC), even for root


@pytest.mark.parametrize("how", ["directory", "full"])
def test_an_unwritable_output_file_fails_the_step_saying_what_was_released(
    emu: Emulator, runner: Runner, how: str
) -> None:
    live_setup(emu)
    output = unwritable(runner, how)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), extra={"GITHUB_OUTPUT": output})
    assert result.returncode == 1, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces["/"] == [new]  # the release happened
    error = result.assert_one_error()
    assert output in error and "GITHUB_OUTPUT" in error
    assert "success" in error and str(new) in error and f"https://{DOMAIN}/" in error
    assert str(new) in result.summary  # the summary was still written
    assert output in result.summary


@pytest.mark.parametrize("how", ["directory", "full"])
def test_an_unwritable_summary_is_a_warning_and_the_release_succeeds(
    emu: Emulator, runner: Runner, how: str
) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    summary = unwritable(runner, how)
    result = runner.run(simple_inputs(emu, ws), extra={"GITHUB_STEP_SUMMARY": summary})
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert result.outputs["workspace-id"] == str(ws)
    assert result.errors == []
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1 and summary in warnings[0] and "GITHUB_STEP_SUMMARY" in warnings[0]


# ------------------------------------------------ 13. names from any repository name ----
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
LONG = "a-very-long-repository-name-that-goes-on-and-on-for-sixty-ch"


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        (f"acme/{LONG}", f"{LONG[:55]}-{SHA[:7]}"),
        ("acme/_internal", f"internal-{SHA[:7]}"),
        ("acme/.github", f"github-{SHA[:7]}"),
        ("acme/__", f"workspace-{SHA[:7]}"),
    ],
)
def test_the_default_workspace_name_is_valid_for_any_repository_name(
    emu: Emulator, runner: Runner, repository: str, expected: str
) -> None:
    assert len(LONG) == 60
    live_setup(emu)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), extra={"GITHUB_REPOSITORY": repository})
    assert result.returncode == 0, result.stdout
    assert "workspace-name" not in result.stdout
    (new,) = created(emu)
    name = emu.workspace(new).name
    assert name == expected and WORKSPACE_NAME.fullmatch(name)


@pytest.mark.parametrize("repository", [f"acme/{LONG}x", "acme/.github"])
def test_a_preview_and_its_teardown_name_the_same_valid_workspace(
    emu: Emulator, runner: Runner, repository: str
) -> None:
    event = {
        **pr_event(runner, repository=repository, head_repository=repository),
        "GITHUB_REPOSITORY": repository,
    }
    result = runner.run(zd_inputs(emu, flow="preview"), extra=event)
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    name = emu.workspace(new).name
    assert WORKSPACE_NAME.fullmatch(name) and name.endswith(f"-pr-{PR}")
    closed = {
        **pr_event(runner, action="closed", repository=repository, head_repository=repository),
        "GITHUB_REPOSITORY": repository,
    }
    gone = runner.run(zd_inputs(emu, flow="teardown"), extra=closed)
    assert gone.returncode == 0, gone.stdout
    assert emu.workspace(new).deleted


def test_a_bad_workspace_name_blames_the_input_only_when_it_was_set(
    emu: Emulator, runner: Runner
) -> None:
    result = runner.run(zd_inputs(emu, **{"workspace-name": "_bad"}))
    assert "input 'workspace-name' is '_bad'" in result.assert_one_error()
    assert emu.requests == []


# ------------------------------------------------ 14. an api-url without /api ------------
@pytest.mark.parametrize("website", ["not_found", "spa"])
@pytest.mark.parametrize("flow", ["simple", "zero-downtime"])
def test_an_api_url_without_api_is_named_as_the_cause(
    emu: Emulator, runner: Runner, website: str, flow: str
) -> None:
    emu.website = website  # what https://codesphere.com answers outside /api
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    site = emu.url.removesuffix("/api")
    inputs = simple_inputs(emu, ws) if flow == "simple" else zd_inputs(emu, domain=DOMAIN)
    result = runner.run({**inputs, "api-url": site})
    assert result.status == "failed"
    error = result.assert_one_error()
    assert f"api-url input ('{site}') looks wrong" in error
    assert "should end in /api" in error and "https://cloud.codesphere.com/api" in error
    assert "workspace-id" not in error and "not found" not in error.lower()
    assert not emu.find_requests(path=r"/api.*")  # nothing reached the API


# ------------------------------------------------ 15. all names taken --------------------
def names(base: str, count: int) -> list[str]:
    return [base, *(f"{base}-{n}" for n in range(2, count + 1))]


def test_all_names_taken_is_one_annotation_with_the_details_in_the_log(
    emu: Emulator, runner: Runner
) -> None:
    for name in names(NAME, 99):
        emu.add_workspace(team_id=TEAM, name=name)  # made by hand
    result = runner.run(zd_inputs(emu))
    assert result.status == "failed"
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert warnings == []
    error = result.assert_one_error()
    assert "all 99 names" in error and "99 not created by codesphere-release" in error
    details = [line for line in result.stdout.splitlines() if "is left alone" in line]
    assert len(details) == 99
    assert not emu.find_requests("POST")


def test_names_taken_before_a_free_one_are_one_warning(emu: Emulator, runner: Runner) -> None:
    first, second, third = names(NAME, 3)
    emu.add_workspace(team_id=TEAM, name=first)
    emu.add_workspace(team_id=TEAM, name=second)
    emu.add_workspace(team_id=TEAM, name=third, env=mark(commit="9" * 12))  # an earlier release
    result = runner.run(zd_inputs(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.workspace(new).name == f"{NAME}-4"
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    (warning,) = [line for line in warnings if "Another commit was deployed" not in line]
    assert "3 names" in warning and f"{NAME}-4" in warning
    assert "2 not created by codesphere-release" in warning and "1 an earlier release" in warning
    details = [line for line in result.stdout.splitlines() if "is left alone" in line]
    assert len(details) == 3 and not any(line.startswith("::") for line in details)
