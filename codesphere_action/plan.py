"""What a run would do (a dry run's plan) or did (prune's table), as one value
the log and the job summary both show.

Standard library only: the summary renders it, and nothing here sends a
request. The flows fill it from the decisions their real runs act on
(``steps/dry_run.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One workspace the run deletes or keeps: ``action`` is "delete" or "keep"
    in a plan, "deleted", "kept" or "not deleted" in prune's table."""

    workspace: str  # "1002 (shop-old)"
    action: str
    why: str


@dataclass
class Plan:
    """``steps``: what the run does, in order, one sentence each; ``domain``,
    ``before``, ``after``: the domain whose map changes, described (see
    ``describe_map``); ``rows``: the workspaces deleted or kept, and why."""

    title: str = "Plan (dry run)"
    headline: str = ""  # what it would do, in a few words, for the notice
    steps: list[str] = field(default_factory=list)
    domain: str = ""
    before: str = ""
    after: str = ""
    rows: list[Row] = field(default_factory=list)

    def delete(self, workspace: str, why: str) -> None:
        self.rows.append(Row(workspace, "delete", why))

    def keep(self, workspace: str, why: str) -> None:
        self.rows.append(Row(workspace, "keep", why))

    def log_lines(self) -> list[str]:
        lines = [f"{number}. {step}" for number, step in enumerate(self.steps, 1)]
        if self.domain:
            lines += [
                f"Map of {self.domain} before: {self.before}",
                f"Map of {self.domain} after: {self.after}",
            ]
        verbs = {"delete": "Delete", "keep": "Keep"}
        for row in self.rows:
            verb = verbs.get(row.action, row.action[:1].upper() + row.action[1:])
            lines.append(f"{verb} workspace {row.workspace}: {row.why}")
        return lines or ["Nothing to do"]

    def markdown(self, cell: Callable[[str], str]) -> list[str]:
        """The summary's section; ``cell`` escapes a table cell."""
        lines = [f"#### {self.title}", ""]
        lines += [f"{number}. {cell(step)}" for number, step in enumerate(self.steps, 1)]
        if self.steps:
            lines.append("")
        if self.domain:
            lines += [
                f"**Map of {cell(self.domain)}** before: {cell(self.before)}; "
                f"after: {cell(self.after)}",
                "",
            ]
        if self.rows:
            lines += ["| Workspace | Action | Why |", "|---|---|---|"]
            lines += [f"| {cell(r.workspace)} | {r.action} | {cell(r.why)} |" for r in self.rows]
            lines.append("")
        if not (self.steps or self.domain or self.rows):
            lines += ["Nothing to do.", ""]
        return lines


def describe_map(paths: Mapping[str, Iterable[object]]) -> str:
    """``/ -> 12, 13; /api -> 34``: paths sorted, ids as given (a label such as
    "the new workspace (shop-4b825dc)" for one that does not exist yet)."""
    parts = [f"{path} -> {', '.join(map(str, ids)) or 'nothing'}" for path, ids in paths.items()]
    return "; ".join(sorted(parts)) or "no paths connected"
