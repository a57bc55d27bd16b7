"""Which flows read each input (input_uses.py), and the one warning for the rest (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from codesphere_action.config import load_config
from codesphere_action.flows.specs import FLOW_NAMES, SPECS
from codesphere_action.input_uses import INPUTS, Unused, ignored_warning, readers, unused_inputs
from codesphere_action.inputs import Inputs, input_env_name

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())

# What each flow cannot do without, so that it loads (the rest is left to the test).
NEEDS = {
    "simple": {"workspace-id": "42"},
    "zero-downtime": {"team-id": "7", "plan-id": "8"},
    "canary": {"team-id": "7", "plan-id": "8", "domain": "shop.example.com"},
    "preview": {"team-id": "7", "plan-id": "8"},
    "teardown": {"team-id": "7", "workspace-name": "shop-pr-5"},
    "promote": {"team-id": "7", "workspace-id": "42", "domain": "shop.example.com"},
    "rollback": {"team-id": "7", "workspace-id": "42", "domain": "shop.example.com"},
    "prune": {"team-id": "7"},
}
# A valid value other than the default, for every input.
SAMPLES = {
    "api-token": "cs-token-other",
    "api-url": "https://codesphere.example.com/api",
    "profile": "prod",
    "prepare": "false",
    "test": "true",
    "stage-timeout": "15m",
    "show-logs": "always",
    "workspace-timeout": "5m",
    "workspace-id": "43",
    "remote": "upstream",
    "branch": "release/1.2",
    "team-id": "9",
    "plan-id": "21",
    "git-url": "https://github.com/acme/other.git",
    "private-repo": "true",
    "replicas": "2",
    "workspace-name": "shop-other",
    "env": "NODE_ENV=production",
    "secret-env": "DB_PASSWORD=s3cr3t-value-91",
    "secret-store": "vault",
    "base-image": "ubuntu-22.04",
    "clone-depth": "1",
    "restricted": "true",
    "shared-vault-name": "prod-secrets",
    "storage-mib": "20480",
    "vpn-config": "office",
    "domain": "other.example.com",
    "domain-path": "/api",
    "delete-previous": "true",
    "switch": "false",
    "health-check-path": "/healthz",
    "health-check-status": "200",
    "health-check-timeout": "90s",
    "health-check-domain": "false",
    "bake-time": "10m",
    "require-commit": "true",
    "cleanup-on-failure": "false",
    "keep": "3",
    "max-age": "2d",
    "dry-run": "true",
    "github-token": "ghs_other-token-55",
    "deployment-environment": "staging",
}


def environ(tmp_path: Path, flow: str, **inputs: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "action": "opened",
                "pull_request": {
                    "number": 5,
                    "head": {
                        "ref": "feature/x",
                        "sha": "a" * 40,
                        "repo": {"full_name": "acme/shop"},
                    },
                },
            }
        )
    )
    result = {
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SHA": "c" * 40,
        "GITHUB_REF_NAME": "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "99",
        "GITHUB_EVENT_NAME": "pull_request" if flow == "preview" else "push",
        "GITHUB_EVENT_PATH": str(event),
    }
    given = {"api-token": "cs-token-7f3a9c", "flow": flow, **NEEDS[flow], **inputs}
    result.update({input_env_name(name): value for name, value in given.items()})
    return result


def with_defaults(tmp_path: Path, flow: str, **inputs: str) -> dict[str, str]:
    """As the runner passes them: every declared input, its default where not given."""
    defaults = {
        name: str(spec.get("default", ""))
        for name, spec in ACTION["inputs"].items()
        if name not in ("flow", "api-token")  # given
    }
    return environ(tmp_path, flow, **{**defaults, **NEEDS[flow], **inputs})


def test_the_table_has_every_input_of_action_yml_in_its_order_with_its_default() -> None:
    declared = ACTION["inputs"]
    assert list(INPUTS) == list(declared)
    for name, use in INPUTS.items():
        assert use.default == str(declared[name].get("default", "")), name
    assert set(SAMPLES) == set(INPUTS) - {"flow"}


@pytest.mark.parametrize("name", [n for n in INPUTS if n != "flow"])
@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_every_input_is_read_or_flagged_by_every_flow(tmp_path: Path, flow: str, name: str) -> None:
    """Set to a value other than its default, an input is either one the flow
    reads, or named in the warning (never both, never neither)."""
    reads = INPUTS[name].reads(SPECS[flow])
    if flow == "rollback" and name == "require-commit":
        # Read to be refused: a rollback goes back on purpose (issue 17).
        with pytest.raises(Exception, match="input 'require-commit' is 'true'"):
            load_config(environ(tmp_path, flow, **{name: SAMPLES[name]}))
        assert reads
        return
    if flow == "canary" and name == "switch":
        # Read to be refused: a canary always joins (issue 22).
        with pytest.raises(Exception, match="input 'switch' is 'false'"):
            load_config(environ(tmp_path, flow, **{name: SAMPLES[name]}))
        assert reads
        return
    if name == "bake-time" and reads:
        # Read, and refused without what the bake watches (issue 22).
        with pytest.raises(Exception, match="input 'bake-time' is '10m'"):
            load_config(environ(tmp_path, flow, **{name: SAMPLES[name]}))
        return
    config = load_config(environ(tmp_path, flow, **{name: SAMPLES[name]}))
    assert (name in config.ignored) == (not reads), f"{name} for {flow}: reads={reads}"
    assert config.ignored in ((), (name,))


def test_every_input_is_read_by_some_flow_and_a_needed_one_by_its_flow() -> None:
    for name in INPUTS:
        assert readers(name), f"no flow reads {name}"
    for flow, spec in SPECS.items():
        for name in spec.needs:
            assert flow in readers(name), f"{flow} needs {name} but would warn of it"


def test_the_flows_read_what_their_modules_use() -> None:
    """Spot checks that the table says what the flows do."""
    assert readers("domain") == ("zero-downtime", "canary", "promote", "rollback")
    assert readers("team-id") == (
        "zero-downtime",
        "canary",
        "preview",
        "teardown",
        "promote",
        "rollback",
        "prune",
    )
    assert (
        readers("plan-id")
        == readers("env")
        == readers("base-image")
        == ("zero-downtime", "canary", "preview")
    )
    assert readers("remote") == ("simple", "preview")  # zero-downtime clones, never pulls
    assert readers("switch") == ("zero-downtime", "canary")  # a canary refuses false
    assert readers("bake-time") == ("zero-downtime", "canary")
    assert readers("keep") == readers("max-age") == ("prune",)
    assert readers("deployment-environment") == tuple(f for f in FLOW_NAMES if f != "prune")
    assert readers("health-check-path") == (
        "simple",
        "zero-downtime",
        "canary",
        "preview",
        "promote",
        "rollback",
    )
    assert readers("require-commit") == (
        "simple",
        "zero-downtime",
        "canary",
        "preview",
        "promote",
        "rollback",
    )


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_a_plain_run_with_the_runners_defaults_flags_nothing_and_is_the_same_run(
    tmp_path: Path, flow: str
) -> None:
    """The runner passes every input with its default: that says nothing, and
    the action's own fallbacks (an input not passed at all) are the same."""
    config = load_config(with_defaults(tmp_path, flow))
    assert config.ignored == () and config.unused == ()
    assert config == load_config(environ(tmp_path, flow))


@pytest.mark.parametrize("value", ["/", " / ", ""])
def test_an_input_set_to_its_default_or_empty_says_nothing(tmp_path: Path, value: str) -> None:
    config = load_config(
        with_defaults(tmp_path, "simple", **{"domain-path": value, "secret-store": "ENV"})
    )
    assert config.ignored == ()


def test_the_simple_flow_names_domain_team_id_and_plan_id_grouped_by_their_flows(
    tmp_path: Path,
) -> None:
    given = {
        "domain": "shop.example.com",
        "team-id": "7",
        "plan-id": "8",
        "secret-env": "K=v4lue-x",
    }
    config = load_config(with_defaults(tmp_path, "simple", **given))
    assert config.ignored == ("team-id", "plan-id", "secret-env", "domain")
    message = ignored_warning("simple", config.ignored)
    assert message == (
        "the simple flow ignores these inputs, which only other flows read: team-id "
        "(zero-downtime, canary, preview, teardown, promote, rollback, prune); plan-id, "
        "secret-env (zero-downtime, canary, preview); domain (zero-downtime, canary, promote, "
        "rollback). Remove them from the step's with:, or choose a flow that reads them"
    )
    assert "v4lue" not in message and "shop.example.com" not in message


def test_one_ignored_input_is_named_alone() -> None:
    assert ignored_warning("prune", ("deployment-environment",)) == (
        "the prune flow ignores this input, which only other flows read: deployment-environment "
        "(simple, zero-downtime, canary, preview, teardown, promote, rollback). Remove it from "
        "the step's with:, or choose a flow that reads it"
    )


def _example_steps() -> list[tuple[str, dict[str, object], set[str]]]:
    from .test_examples import _action_steps, _examples, _page_blocks, flows_of  # noqa: PLC0415

    found = []
    for where, workflow in {**_examples(), **_page_blocks()}.items():
        for job in (workflow.get("jobs") or {}).values():
            for step in _action_steps(job):
                found.append((where, step.get("with") or {}, flows_of(step, workflow)))
    return found


def test_no_example_passes_an_input_its_flow_ignores() -> None:
    """What users paste warns nothing: every input a step of examples/ or of the
    pages' workflow blocks sets is read by each flow the step can run."""
    steps = _example_steps()
    assert len(steps) >= 8
    for where, inputs, flows in steps:
        # As the runner passes them (an expression such as vars.X counts as set).
        given = Inputs({input_env_name(n): str(v).lower() for n, v in inputs.items()})
        for flow in flows:
            spec = SPECS[flow]
            unread = [n for n in inputs if n in INPUTS and not INPUTS[n].reads(spec)]
            set_ = [n for n in unread if str(inputs[n]).strip() not in ("", INPUTS[n].default)]
            assert not set_, f"{where}: flow {flow} ignores {', '.join(set_)}"
            assert unused_inputs(given, spec) == (), f"{where}: flow {flow}"


# -- inputs another setting leaves unused (review 23) --------------------------------------


def test_what_zero_downtime_without_a_domain_or_with_switch_false_does_not_use(
    tmp_path: Path,
) -> None:
    """An unset vars.CODESPHERE_DOMAIN gives an empty domain: delete-previous
    (and the rest of the switch) would be dropped silently. With switch: false the
    domain and its path still say where the staged release goes (its mark, the
    promote it names)."""
    switch_inputs = {
        "delete-previous": "true",
        "domain-path": "/api",
        "health-check-domain": "false",
        "health-check-path": "/healthz",
    }
    no_domain = load_config(with_defaults(tmp_path, "zero-downtime", **switch_inputs))
    assert no_domain.ignored == ()
    assert no_domain.unused == (
        Unused(
            "domain is empty, so nothing is switched: is its variable set?",
            ("domain-path", "delete-previous", "health-check-domain"),
        ),
    )
    staged = load_config(
        with_defaults(
            tmp_path, "zero-downtime", domain="shop.example.com", switch="false", **switch_inputs
        )
    )
    assert staged.unused == (
        Unused(
            "switch: false stages the release, so nothing is switched",
            ("delete-previous", "health-check-domain"),
        ),
    )
    switched = load_config(
        with_defaults(tmp_path, "zero-downtime", domain="shop.example.com", **switch_inputs)
    )
    assert switched.unused == ()


@pytest.mark.parametrize("flow", ["canary", "promote", "rollback"])
def test_flows_that_always_switch_leave_delete_previous_in_use(tmp_path: Path, flow: str) -> None:
    config = load_config(with_defaults(tmp_path, flow, **{"delete-previous": "true"}))
    assert config.unused == () and config.ignored == ()


def test_health_check_inputs_without_a_path_and_an_environment_without_a_token(
    tmp_path: Path,
) -> None:
    given = {
        "health-check-status": "200",
        "health-check-timeout": "90s",
        "deployment-environment": "staging",
    }
    config = load_config(with_defaults(tmp_path, "simple", **given))
    assert config.unused == (
        Unused(
            "health-check-path is empty, so nothing is health-checked",
            ("health-check-status", "health-check-timeout"),
        ),
        Unused(
            "github-token is empty, so no GitHub deployment is recorded",
            ("deployment-environment",),
        ),
    )
    used = load_config(
        with_defaults(
            tmp_path, "simple", **given, **{"health-check-path": "/healthz", "github-token": "t"}
        )
    )
    assert used.unused == ()


def test_one_warning_names_both_kinds_and_the_settings_never_a_value(tmp_path: Path) -> None:
    given = {"domain": "shop.example.com", "delete-previous": "true", "switch": "false"}
    given["deployment-environment"] = "prod-eu-7"
    config = load_config(with_defaults(tmp_path, "zero-downtime", **given, keep="3"))
    message = ignored_warning(config.flow, config.ignored, config.unused)
    assert message == (
        "the zero-downtime flow ignores this input, which only other flows read: keep "
        "(prune). Remove it from the step's with:, or choose a flow that reads it. These "
        "inputs do nothing with the other inputs as they are: delete-previous (switch: false "
        "stages the release, so nothing is switched); deployment-environment (github-token is "
        "empty, so no GitHub deployment is recorded). Remove them, or set what they need"
    )
    assert "prod-eu-7" not in message and "shop.example.com" not in message
    alone = ignored_warning("zero-downtime", (), config.unused[:1])
    assert alone == (
        "this input does nothing with the other inputs as they are: delete-previous (switch: "
        "false stages the release, so nothing is switched). Remove it, or set what it needs"
    )
