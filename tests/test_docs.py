"""The README and docs/ stay one readable set: every relative link and anchor
resolves, and the README stays short enough to read (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation other than
    '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found |= set(re.findall(r'<a id="([^"]+)"', text))
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT)}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading or <a id> {anchor!r}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_is_for_users_first() -> None:
    """Short, with a table of contents that reaches every section, and a first
    screen that leads to a dry run and a first release."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 450
    toc = re.search(r"^## Contents\n(.*?)^## ", readme, re.S | re.M)
    assert toc, "README.md has no '## Contents'"
    listed = set(re.findall(r"\]\(#([^)]+)\)", toc.group(1)))
    sections = {github_slug(h) for h in re.findall(r"^## (.+)$", readme, re.M)} - {"contents"}
    assert sections <= listed, f"sections missing from Contents: {sections - listed}"
    first_screen = "\n".join(readme.splitlines()[:60])
    assert "dry-run" in first_screen
    assert "#set-it-up-in-three-steps" in first_screen


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme_links = {t.partition("#")[0] for t in links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme_links, f"README.md never links docs/{page.name}"
