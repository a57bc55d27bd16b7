"""The job summary: one Markdown section a person reads at a glance."""

from __future__ import annotations

from .config import Config
from .context import Result
from .github import format_seconds

HEADLINES = {
    "success": "✅ Released",
    "failed": "❌ Release failed",
    "timed-out": "⏱️ Release timed out",
    "cancelled": "⚪ Release cancelled",
}
OUTCOME_ICONS = {"success": "✅", "failed": "❌", "skipped": "⏭️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary(result: Result, config: Config | None) -> str:
    out = result.outputs
    lines = [
        f"### {HEADLINES.get(result.status, result.status)} · Codesphere `{result.flow}` flow",
        "",
    ]
    if result.message:
        lines += [f"**{_cell(result.message)}**", ""]
    rows: list[tuple[str, str]] = []
    workspace = out["workspace-id"]
    if workspace:
        name = f" ({_cell(result.workspace_name)})" if result.workspace_name else ""
        rows.append(("Workspace", f"`{workspace}`{name}"))
    if out["workspace-url"]:
        rows.append(("Workspace URL", f"<{out['workspace-url']}>"))
    if out["domain-url"]:
        rows.append(("Domain", f"<{out['domain-url']}>"))
    if out["previous-workspace-id"]:
        rows.append(("Previous workspace", f"`{out['previous-workspace-id']}`"))
    commit = out["deployed-commit"]
    if commit:
        link = f"`{commit[:7]}`"
        if config is not None and config.repository:
            link = f"[`{commit[:7]}`]({config.server_url}/{config.repository}/commit/{commit})"
        rows.append(("Commit", link))
    if rows:
        lines += ["| | |", "|---|---|", *(f"| **{k}** | {v} |" for k, v in rows), ""]
    if result.phases:
        lines += ["| Phase | Result | Duration | Detail |", "|---|---|---|---|"]
        for phase in result.phases:
            icon = OUTCOME_ICONS.get(phase.outcome, "")
            lines.append(
                f"| {_cell(phase.name)} | {icon} {phase.outcome} | "
                f"{format_seconds(phase.seconds)} | {_cell(phase.detail)} |"
            )
        total = sum(p.seconds for p in result.phases)
        lines += [f"| **Total** | | **{format_seconds(total)}** | |", ""]
    if result.status == "success":
        lines += [f"> {s[0].upper() + s[1:]}" for s in result.aftermath]
    lines.append("")
    return "\n".join(lines) + "\n"
