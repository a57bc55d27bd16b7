"""End to end: the behaviour issue 17 requires, one test (or parametrized test) per item.

Inputs real workflows pass and answers a busy platform gives. Each test states what
the action MUST do; they fail against the action as it was when they were written,
and pass once it is fixed. They assert only on outputs, the exit code, the emulator's
state and requests, and a few stable phrases of the log and the ``::error`` line.
"""

from __future__ import annotations

from .e2e import ActionRun, Runner
from .emulator import Emulator
from .test_e2e_zero_downtime import DOMAIN, created, live_setup, zd_inputs

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
