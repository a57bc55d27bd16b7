"""The README's inputs/outputs tables and action.yml must agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from codesphere_action.context import OUTPUT_NAMES
from codesphere_action.flows.specs import FLOW_NAMES
from scripts.readme_tables import render, tables

from .test_docs import anchors

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_match_action_yml() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    readme = (ROOT / "README.md").read_text()
    assert render(readme, action) == readme, (
        "README.md's inputs/outputs tables differ from action.yml: "
        "run `python scripts/readme_tables.py --write`"
    )


def test_every_input_is_read_by_the_code_and_every_output_written() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    code = "\n".join(p.read_text() for p in (ROOT / "codesphere_action").rglob("*.py"))
    for name in action["inputs"]:
        assert f'"{name}"' in code, f"input {name} is declared but never read"
    assert list(action["outputs"]) == list(OUTPUT_NAMES)


MAX_DESCRIPTION = 200  # characters, its link included
DETAILS = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


@pytest.mark.parametrize("kind", ["inputs", "outputs"])
def test_every_description_is_a_sentence_or_two_and_links_to_its_details(kind: str) -> None:
    """Issue 23: the descriptions ran up to 509 characters. Each is one or two
    sentences and a link to a heading (or <a id>) of README.md or docs/*.md,
    relative to the repository's root, as the README's tables show them."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    for name, spec in action[kind].items():
        text = spec["description"]
        assert len(text) <= MAX_DESCRIPTION, f"{name}: {len(text)} characters"
        links = DETAILS.findall(text)
        assert links, f"{name}: no link to its details"
        prose = DETAILS.sub("", text).replace("e.g.", "eg").strip()
        assert len(re.findall(r"[.!?](?:\s|$)", prose)) <= 2, f"{name}: more than two sentences"
        for target in links:
            path, _, anchor = target.partition("#")
            assert path == "README.md" or re.fullmatch(r"docs/[\w.-]+\.md", path) or not path
            page = ROOT / (path or "README.md")
            assert page.exists(), f"{name}: {target}: no {path}"
            assert anchor and anchor in anchors(page), f"{name}: {target}: no such heading"


def test_every_input_and_output_has_its_entry_in_full() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    found = anchors(ROOT / "docs/inputs.md")
    for kind in ("input", "output"):
        for name in action[f"{kind}s"]:
            assert f"{kind}-{name}" in found, f"docs/inputs.md has no entry for {kind} {name}"


def test_tables_have_a_row_per_input() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    generated = tables(action)
    assert len(re.findall(r"^\| `", generated["inputs"], re.M)) == len(action["inputs"])


def test_release_workflow_can_point_action_yml_at_the_published_image() -> None:
    """release.yml rewrites this exact line when it moves the major tag."""
    lines = (ROOT / "action.yml").read_text().splitlines()
    assert lines.count("  image: Dockerfile") == 1
    workflow = (ROOT / ".github/workflows/release.yml").read_text()
    assert "grep -q '^  image: Dockerfile$' action.yml" in workflow


def test_the_readmes_preview_workflow_is_examples_preview_yml() -> None:
    """One preview workflow (types:, if:, the concurrency group), shown and shipped
    alike: the block in docs/previews.md is the example without its leading comment."""
    page = (ROOT / "docs/previews.md").read_text()
    block = re.search(
        r"also in \[`examples/preview\.yml`\]\(\.\./examples/preview\.yml\):"
        r"\n\n```yaml\n(.*?)```\n",
        page,
        re.S,
    )
    assert block, "docs/previews.md shows no preview workflow"
    lines = (ROOT / "examples/preview.yml").read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    assert block.group(1) == "".join(lines)


PRODUCTION_GROUP = "codesphere-release-production"
# The flows that never touch the production domain: previews have a group per
# pull request; prune deletes only what serves nothing, and never waits in the
# release group (a pending run there would replace a pending release).
OWN_GROUPS = {"preview", "teardown", "prune"}


def _flows(workflow: dict[str, object]) -> set[str]:
    """The flows a workflow runs (a step's flow input; an expression counts as
    the flows it names)."""
    found = set()
    jobs = workflow.get("jobs")
    for job in (jobs or {}).values() if isinstance(jobs, dict) else ():
        for step in job.get("steps", []):
            inputs = step.get("with") or {}
            if "codesphere-release" not in str(step.get("uses", "")):
                continue
            flow = str(inputs.get("flow", "simple"))
            names = re.findall(r"[a-z-]+", flow) if "${{" in flow else [flow]
            found |= {name for name in names if name not in ("inputs", "flow")} or {"simple"}
    return found


def test_every_workflow_that_touches_production_shares_one_concurrency_group() -> None:
    """Releases, promotes and rollbacks of one app queue in one group, whichever
    workflow starts them (issue 21): examples/*.yml and the README's snippets."""
    workflows = {
        str(path.relative_to(ROOT)): yaml.safe_load(path.read_text())
        for path in sorted((ROOT / "examples").glob("*.yml"))
    }
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for number, block in enumerate(re.findall(r"```yaml\n(.*?)```\n", text, re.S)):
            parsed = yaml.safe_load(block)
            # A whole workflow (YAML 1.1 reads the key `on` as True), with or
            # without a concurrency group; a fragment of jobs is not one.
            if isinstance(parsed, dict) and "jobs" in parsed and ("on" in parsed or True in parsed):
                workflows[f"{page.relative_to(ROOT)} yaml block {number + 1}"] = parsed
    checked = set()
    for where, workflow in workflows.items():
        flows = _flows(workflow)
        if not flows or flows <= OWN_GROUPS:
            continue
        checked.add(where)
        group = (workflow.get("concurrency") or {}).get("group")
        assert group == PRODUCTION_GROUP, f"{where}: concurrency group {group!r}"
    # Every production workflow shown or shipped was looked at.
    assert {
        "examples/release.yml",
        "examples/zero-downtime.yml",
        "examples/staged.yml",
        "examples/rollback.yml",
        "examples/simple.yml",
        "README.md yaml block 2",  # the setup's workflow (block 1 is the sample ci.yml)
    } <= checked


def test_the_changelog_keeps_a_changelog_and_names_every_flow() -> None:
    """CHANGELOG.md in Keep a Changelog form, ready for v1: an Unreleased
    section of the usual kinds of change, its link, and every flow."""
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/)" in text
    assert re.search(r"^## \[Unreleased\]$", text, re.M)
    kinds = re.findall(r"^### (.*)$", text, re.M)
    assert kinds and set(kinds) <= {
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
    }
    assert re.search(r"^\[Unreleased\]: https://\S+$", text, re.M)
    for flow in FLOW_NAMES:
        assert f"`flow: {flow}`" in text, f"CHANGELOG.md does not name flow: {flow}"
