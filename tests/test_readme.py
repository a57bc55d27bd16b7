"""The README's inputs/outputs tables and action.yml must agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from codesphere_action.context import OUTPUT_NAMES
from scripts.readme_tables import render, tables

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
    alike: the README's block is the example without its leading comment."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"also in \[`examples/preview\.yml`\]\(examples/preview\.yml\):\n\n```yaml\n(.*?)```\n",
        readme,
        re.S,
    )
    assert block, "README.md shows no preview workflow"
    lines = (ROOT / "examples/preview.yml").read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    assert block.group(1) == "".join(lines)
