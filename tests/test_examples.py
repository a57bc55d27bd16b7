"""The examples work as pasted (issue 23): examples/*.yml, and the workflow
blocks of README.md and docs/*.md where a rule applies to them too.

- **Timeouts** (examples and the pages' blocks): every job's
  ``timeout-minutes`` is above the sum of its waits, by the README's rule: each
  stage may take ``stage-timeout``, a workspace ``workspace-timeout`` to start
  (a new one, or a sleeping one woken up), the health check
  ``health-check-timeout``, a switch 1 min. The values are the step's inputs,
  else ``action.yml``'s defaults; a flow chosen by an expression counts as the
  worst of the flows it can be. What the rule leaves out (a git pull of up to
  2 min, the check through the domain, a cleanup) is what the room above the
  sum is for.
- **What to replace** (examples): the action is pinned as
  ``OWNER/codesphere-release@<commit-sha>`` (no tag exists yet), and the first
  comment says to replace both and names every secret and variable it reads.
- **One domain, one idea of what serves it** (examples): the domain comes from
  ``vars.CODESPHERE_DOMAIN``; no workflow mixes the simple flow (it releases
  into the fixed ``workspace-id``) with flows that move the domain to other
  workspaces; a release that switches a domain deletes what served it before,
  or prunes the earlier releases in the same job.
- **Failure steps** (examples): a step that runs after a failure and reads
  the action's outputs never says the domain was not switched when
  ``domain-url`` says it was.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from codesphere_action.inputs import parse_bake_time, parse_bool, parse_duration
from codesphere_action.timings import SWITCH_SECONDS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
DEFAULTS = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
USES = "OWNER/codesphere-release@<commit-sha>"

# The waits of each flow, by the README's rule. A flow that is not here fails
# the test that meets it in an example: add its waits (the bake: the time it
# watches the new release, bake-time; each switch of the domain one).
WAITS: dict[str, tuple[str, ...]] = {
    "simple": ("workspace", "stages", "health"),  # waking a sleeping workspace counts
    "zero-downtime": ("workspace", "stages", "health", "switch", "bake"),
    # The join, then the completion (or the restore after a failed bake).
    "canary": ("workspace", "stages", "health", "switch", "switch", "bake"),
    "preview": ("workspace", "stages", "health"),  # a new workspace, or waking the preview
    "promote": ("health", "switch"),
    "rollback": ("health", "switch"),
    "teardown": (),
    "prune": (),
}
SWITCH_MINUTES = SWITCH_SECONDS / 60  # the README's rule: a switch 1 min
DOMAIN_FLOWS = {"zero-downtime", "canary", "promote", "rollback"}  # what serves: the map


def _page_blocks() -> dict[str, dict[str, Any]]:
    """The yaml blocks of README.md and docs/*.md that hold jobs, by where they are."""
    found = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for match in re.finditer(r"```yaml\n(.*?)```\n", text, re.S):
            parsed = yaml.safe_load(match.group(1))
            if isinstance(parsed, dict) and isinstance(parsed.get("jobs"), dict):
                line = text.count("\n", 0, match.start()) + 1
                found[f"{page.relative_to(ROOT)} line {line}"] = parsed
    return found


def _examples() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in EXAMPLES}


def _action_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps") or [] if "codesphere-release@" in str(s.get("uses", ""))]


def _dispatch_inputs(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # PyYAML reads a bare `on` as True
    dispatch = on.get("workflow_dispatch") if isinstance(on, dict) else None
    return (dispatch or {}).get("inputs") or {}


def flows_of(step: dict[str, Any], workflow: dict[str, Any]) -> set[str]:
    """The flows a step can run: its flow input, or, for an expression, every
    quoted flow in it and every option of the workflow_dispatch choices it reads."""
    value = str((step.get("with") or {}).get("flow", DEFAULTS["flow"]))
    if "${{" not in value:
        return {value}
    flows = set(re.findall(r"'([a-z-]+)'", value))
    inputs = _dispatch_inputs(workflow)
    for name in re.findall(r"\binputs\.([\w-]+)", value):
        spec = inputs.get(name) or {}
        assert spec.get("type") == "choice", f"flow reads inputs.{name}, which is not a choice"
        flows |= {str(option) for option in spec["options"]}
    return flows


def _duration_minutes(inputs: dict[str, Any], name: str) -> float:
    value = str(inputs.get(name, DEFAULTS[name]))
    assert "${{" not in value, f"{name}: {value!r} is an expression; the rule needs a value"
    return parse_duration(name, value) / 60


def _on(inputs: dict[str, Any], name: str) -> bool:
    """A true/false input; an expression counts as true (the longer case)."""
    value = str(inputs.get(name, DEFAULTS[name])).lower()
    return "${{" in value or parse_bool(name, value)


def step_minutes(step: dict[str, Any], workflow: dict[str, Any]) -> float:
    """The step's waits by the README's rule, for the longest flow it can run."""
    inputs = step.get("with") or {}
    stages = 1 + _on(inputs, "prepare") + _on(inputs, "test")  # run always
    minutes = {
        "switch": SWITCH_MINUTES,
        "workspace": _duration_minutes(inputs, "workspace-timeout"),
        "stages": stages * _duration_minutes(inputs, "stage-timeout"),
        "health": _duration_minutes(inputs, "health-check-timeout")
        if str(inputs.get("health-check-path", DEFAULTS["health-check-path"]))
        else 0.0,
        "bake": parse_bake_time("bake-time", str(inputs.get("bake-time", DEFAULTS["bake-time"])))
        / 60,
    }
    # zero-downtime switches only with a domain and without switch: false
    stays = not inputs.get("domain") or str(inputs.get("switch", "true")).lower() == "false"
    totals = []
    for flow in flows_of(step, workflow):
        assert flow in WAITS, f"flow {flow!r}: add its waits to WAITS in {__name__}"
        waits = [
            w
            for w in WAITS[flow]
            if not (w in ("switch", "bake") and flow == "zero-downtime" and stays)
        ]
        totals.append(sum(minutes[wait] for wait in waits))
    return max(totals)


def job_problems(workflow: dict[str, Any]) -> list[str]:
    """Jobs whose timeout-minutes is missing or not above the sum of their waits
    (the steps of a job run one after another; a step with an if: counts too)."""
    problems = []
    for name, job in workflow["jobs"].items():
        timeout = job.get("timeout-minutes")
        if not isinstance(timeout, int):
            problems.append(f"job {name}: timeout-minutes {timeout!r} is not a number of minutes")
            continue
        needed = sum(step_minutes(step, workflow) for step in _action_steps(job))
        if timeout <= needed:
            problems.append(
                f"job {name}: timeout-minutes {timeout} is not above the sum of its waits, "
                f"{needed:g} min"
            )
    return problems


WORKFLOWS = {**_examples(), **_page_blocks()}


@pytest.mark.parametrize("where", sorted(WORKFLOWS))
def test_every_job_has_more_time_than_its_waits(where: str) -> None:
    assert job_problems(WORKFLOWS[where]) == []


def test_the_pages_blocks_and_the_examples_are_all_checked() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "cleanup.yml",
        "preview.yml",
        "release.yml",
        "rollback.yml",
        "simple.yml",
        "staged.yml",
        "zero-downtime.yml",
        "canary.yml",
    }
    # The pages' workflow blocks are found (today the README's setup workflow, the
    # staged release in docs/releases.md, the previews in docs/previews.md).
    assert any(where.startswith("README.md") for where in _page_blocks())


def _job(steps: list[dict[str, Any]], timeout: int) -> dict[str, Any]:
    return {"jobs": {"release": {"timeout-minutes": timeout, "steps": steps}}}


def _step(**inputs: str) -> dict[str, Any]:
    return {"uses": USES, "with": inputs}


def test_the_rule_counts_every_wait_of_the_flow_it_runs() -> None:
    """The README's numbers: the Quick start (wake 10 + prepare and run 15 each +
    health check 5 = 45) needs more than 40; defaults need more than 70."""
    quick_start = _step(**{"stage-timeout": "15m", "health-check-path": "/healthz"})
    assert job_problems(_job([quick_start], 40)) == [
        "job release: timeout-minutes 40 is not above the sum of its waits, 45 min"
    ]
    assert job_problems(_job([quick_start], 46)) == []
    assert job_problems(_job([_step()], 70)) != []  # wake 10 + prepare 30 + run 30
    staged = _step(flow="zero-downtime", switch="false", test="true", **{"stage-timeout": "15m"})
    assert job_problems(_job([staged], 56)) == []
    staged["with"]["health-check-path"] = "/healthz"
    assert job_problems(_job([staged], 60)) != []  # start 10 + 3 stages 15 + health 5
    rollback = _step(flow="rollback", **{"health-check-path": "/up", "health-check-timeout": "90s"})
    assert job_problems(_job([rollback], 2)) == [  # health check 1.5 + switch 1
        "job release: timeout-minutes 2 is not above the sum of its waits, 2.5 min"
    ]
    assert job_problems(_job([rollback], 3)) == []
    assert job_problems(_job([rollback, rollback], 5)) != []  # steps add up
    zero_downtime = _step(flow="zero-downtime", domain="shop.test", prepare="false")
    assert job_problems(_job([zero_downtime], 41)) != []  # start 10 + run 30 + switch 1
    assert job_problems(_job([_step(flow="prune", prepare="false")], 1)) == []
    canary = _step(flow="canary", domain="shop.test", prepare="false", **{"bake-time": "10m"})
    # start 10 + run 30 + join 1 + bake 10 + completion 1
    assert job_problems(_job([canary], 52)) == [
        "job release: timeout-minutes 52 is not above the sum of its waits, 52 min"
    ]
    assert job_problems(_job([canary], 53)) == []
    baking = _step(flow="zero-downtime", domain="shop.test", prepare="false", **{"bake-time": "1h"})
    assert job_problems(_job([baking], 101)) != []  # start 10 + run 30 + switch 1 + bake 60
    assert job_problems(_job([baking], 102)) == []


def test_an_expression_counts_as_the_longest_flow_it_can_choose() -> None:
    workflow = _job([_step(flow="${{ inputs.flow || 'rollback' }}", test="${{ inputs.t }}")], 60)
    workflow["on"] = {
        "workflow_dispatch": {"inputs": {"flow": {"type": "choice", "options": ["simple"]}}}
    }
    assert flows_of(workflow["jobs"]["release"]["steps"][0], workflow) == {"simple", "rollback"}
    # simple, defaults, test counted: wake 10 + prepare, test, run 30 each.
    assert job_problems(workflow) == [
        "job release: timeout-minutes 60 is not above the sum of its waits, 100 min"
    ]
    with pytest.raises(AssertionError, match="expression"):
        step_minutes(_step(**{"stage-timeout": "${{ vars.T }}"}), workflow)
    with pytest.raises(AssertionError, match="add its waits"):
        step_minutes(_step(flow="blue-green"), workflow)


# -- what to replace -----------------------------------------------------------------


def _first_comment(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return " ".join(lines)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_says_in_its_first_comment_what_to_replace_and_set(path: Path) -> None:
    text, comment = path.read_text(), _first_comment(path)
    uses = re.findall(r"^\s*(?:- )?uses: *(\S*codesphere-release\S*)(.*)$", text, re.M)
    assert uses, "the example does not use the action"
    for ref, rest in uses:
        assert ref == USES, f"uses {ref}: pin {USES} until v1 is tagged"
        assert rest.strip() == "# until v1 is tagged", f"uses {ref}{rest}"
    assert "OWNER" in comment and "<commit-sha>" in comment, comment
    for kind, name in sorted(set(re.findall(r"\b(secrets|vars)\.([A-Z][A-Z0-9_]*)", text))):
        assert name in comment, f"{kind}.{name} is read, but the first comment does not name it"


# -- one domain, one idea of what serves it -------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_domain_comes_from_the_repository_variable(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert "example.com" not in path.read_text()
    for job in workflow["jobs"].values():
        for step in _action_steps(job):
            domain = (step.get("with") or {}).get("domain")
            if domain is not None:
                assert domain == "${{ vars.CODESPHERE_DOMAIN }}", f"{step.get('name')}: {domain}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_example_mixes_the_simple_flow_with_flows_that_move_the_domain(path: Path) -> None:
    """After one zero-downtime release, promote or rollback, the domain serves
    another workspace than workspace-id: a later simple release would go into a
    workspace nobody reaches."""
    workflow = yaml.safe_load(path.read_text())
    flows = {
        flow
        for job in workflow["jobs"].values()
        for step in _action_steps(job)
        for flow in flows_of(step, workflow)
    }
    assert not ("simple" in flows and flows & DOMAIN_FLOWS), f"{path.name} runs {sorted(flows)}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_a_release_that_switches_a_domain_leaves_no_pile_of_workspaces(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    for name, job in workflow["jobs"].items():
        steps = _action_steps(job)
        for step in steps:
            inputs = step.get("with") or {}
            switches = (
                "zero-downtime" in flows_of(step, workflow)
                and inputs.get("domain")
                and str(inputs.get("switch", "true")).lower() != "false"
            )
            pruned = any(flows_of(s, workflow) == {"prune"} for s in steps)
            deletes = str(inputs.get("delete-previous", "false")).lower() == "true"
            assert not switches or deletes or pruned, (
                f"job {name}: a zero-downtime release that neither deletes the previous "
                "workspace nor prunes earlier releases"
            )


# -- failure steps --------------------------------------------------------------------


def _failure_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        step
        for job in workflow["jobs"].values()
        for step in job.get("steps") or []
        if "failure()" in str(step.get("if", "")) and "run" in step
    ]


def _run_with(step: dict[str, Any], outputs: dict[str, str]) -> str:
    """The step's script, as the runner runs it, with its env's
    ``steps.<id>.outputs.<name>`` expressions set to ``outputs``."""
    env = {}
    for key, value in (step.get("env") or {}).items():
        match = re.fullmatch(r"\$\{\{ *steps\.[\w-]+\.outputs\.([\w-]+) *\}\}", str(value))
        assert match, f"env {key}: {value}"
        env[key] = outputs.get(match.group(1), "")
    script = str(step["run"])
    assert "${{" not in script, "expressions go through env, not into the script"
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return proc.stdout


def test_the_failure_step_says_what_happened_to_the_domain() -> None:
    """zero-downtime.yml's failure step runs after a failure before the switch
    and after one (a previous workspace that could not be deleted, a cancel
    during the switch): it reads domain-url, which the action sets once the
    domain points at the new workspace and clears when it switched back."""
    workflow = yaml.safe_load((ROOT / "examples/zero-downtime.yml").read_text())
    (step,) = _failure_steps(workflow)
    after = _run_with(
        step,
        {
            "status": "failed",
            "workspace-id": "1002",
            "domain-url": "https://shop.test/",
            "previous-workspace-id": "1001",
        },
    )
    assert "not switched" not in after
    assert "https://shop.test/" in after and "1002" in after and "1001" in after
    before = _run_with(step, {"status": "failed", "workspace-id": "1002"})
    assert "https://shop.test/" not in before
    assert "1002" in before
    assert "not" in before  # the domain was not (confirmed) switched to it


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_failure_step_claims_an_unswitched_domain_regardless(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    for step in _failure_steps(workflow):
        if "outputs.domain-url" in str(step.get("env")):
            continue  # it can tell (see above)
        assert "switched" not in str(step["run"]), step.get("name")
