"""Generate the README's inputs and outputs tables from action.yml.

    python scripts/readme_tables.py          # print the tables
    python scripts/readme_tables.py --write  # rewrite them in README.md

The README holds them between ``<!-- inputs:start -->`` / ``<!-- inputs:end -->``
(and the same for outputs); tests/test_readme.py fails when they drift.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def tables(action: dict[str, Any]) -> dict[str, str]:
    inputs = ["| input | default | description |", "|---|---|---|"]
    for name, spec in action["inputs"].items():
        if spec.get("required"):
            default = "**required**"
        else:
            value = str(spec.get("default", ""))
            default = f"`{value}`" if value else "empty"
        inputs.append(f"| `{name}` | {default} | {_cell(spec['description'])} |")
    outputs = ["| output | description |", "|---|---|"]
    for name, spec in action["outputs"].items():
        outputs.append(f"| `{name}` | {_cell(spec['description'])} |")
    return {"inputs": "\n".join(inputs), "outputs": "\n".join(outputs)}


def render(readme: str, action: dict[str, Any]) -> str:
    for section, table in tables(action).items():
        pattern = re.compile(
            rf"(<!-- {section}:start -->\n).*?(\n<!-- {section}:end -->)", re.DOTALL
        )
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- {section}:start/end --> markers")
        readme = pattern.sub(lambda m: m.group(1) + table + m.group(2), readme)  # noqa: B023
    return readme


def main() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    if "--write" in sys.argv:
        path = ROOT / "README.md"
        path.write_text(render(path.read_text(), action))
    else:
        for table in tables(action).values():
            print(table + "\n")


if __name__ == "__main__":
    main()
