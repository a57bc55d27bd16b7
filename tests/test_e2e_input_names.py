"""End to end: inputs by their names (issue 23), as a runner passes them.

The runner passes every input action.yml declares (the step's ``with:`` value,
else its default, else empty) and an undeclared one only when ``with:`` names
it (``emulator/runner.py``). So an input under its old name is the user's own
key, whatever its value.
"""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.events import PR, pr_event
from emulator.github import FakeGitHub
from emulator.runner import Runner

from .test_e2e_preview import preview_inputs


@pytest.mark.parametrize("value", ["staging", ""])
def test_the_old_environment_input_fails_before_any_request_naming_the_new_one(
    emu: Emulator, runner: Runner, value: str
) -> None:
    with FakeGitHub(token="ghs_old-name-token-0123") as github:
        inputs = preview_inputs(emu, **{"github-token": "ghs_old-name-token-0123"})
        result = runner.run(
            {**inputs, "environment": value},
            extra={**pr_event(runner), "GITHUB_API_URL": github.url},
        )
        assert github.requests == []
    assert result.returncode == 1
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "input 'environment' is" in error
    assert "renamed to 'deployment-environment'" in error
    assert "`deployment-environment:` instead of `environment:`" in error
    assert emu.requests == []


def test_deployment_environment_names_the_deployments_environment(
    emu: Emulator, runner: Runner
) -> None:
    with FakeGitHub(token="ghs_new-name-token-0123") as github:
        inputs = preview_inputs(
            emu,
            prepare="false",
            **{"github-token": "ghs_new-name-token-0123", "deployment-environment": "review"},
        )
        result = runner.run(inputs, extra={**pr_event(runner), "GITHUB_API_URL": github.url})
        assert result.status == "success", result.stdout
        (deployment,) = github.deployments.values()
    assert deployment.body["environment"] == "review"  # not the default preview-pr-<number>
    assert deployment.body["payload"]["codesphere-release"]["pr"] == PR
