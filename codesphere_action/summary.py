"""The job summary: one Markdown section a person reads at a glance."""

from __future__ import annotations

from collections.abc import Callable

from .config import Config
from .context import Result
from .flows.specs import SPECS
from .github import MAX_LINE_BYTES, bound, format_seconds, sentence

HEADLINES = {
    "success": "✅ {done}",
    "failed": "❌ {what} failed",
    "timed-out": "⏱️ {what} timed out",
    "cancelled": "⚪ {what} cancelled",
    "skipped": "⏭️ {what} skipped",
    "superseded": "⏭️ {what} superseded",
    "planned": "📝 {what} planned (dry run)",
}
OUTCOME_ICONS = {
    "success": "✅",
    "failed": "❌",
    "timed out": "⏱️",
    "skipped": "⏭️",
    "superseded": "⏭️",
    "planned": "📝",
    "cancelled": "⚪",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _commit_link(commit: str, config: Config | None) -> str:
    if config is not None and config.run.repository:
        run = config.run
        return f"[`{commit[:7]}`]({run.server_url}/{run.repository}/commit/{commit})"
    return f"`{commit[:7]}`"


def flow_words(flow: str) -> tuple[str, str]:
    """("Release", "Released") and the like, for the flow's headline and notice
    (its spec's words; a release's for a flow input that is not one)."""
    spec = SPECS.get(flow)
    return (spec.noun, spec.done) if spec else ("Release", "Released")


def render_summary(
    result: Result, config: Config | None, redact: Callable[[str], str] = str
) -> str:
    """The summary's Markdown. ``redact``: the reporter's, applied before anything
    is cut (a cut must never leave part of a secret)."""
    what, done = flow_words(result.flow)
    done = result.done or done
    headline = HEADLINES.get(result.status, result.status).format(what=what, done=done)
    lines = [f"### {headline} · Codesphere `{result.flow}` flow", ""]
    if result.message:
        # Cut before the Reporter would, so the bold still closes.
        message = bound(_cell(sentence(redact(result.message))), MAX_LINE_BYTES - 8)
        lines += [f"**{message}**", ""]
    rows = _rows(result, config)
    if rows:
        # The first row is the header: GitHub renders an empty header as a blank bar.
        lines += [f"| **{k}** | {v} |" for k, v in rows[:1]]
        lines += ["|---|---|", *(f"| **{k}** | {v} |" for k, v in rows[1:]), ""]
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
    if result.plan is not None:
        lines += result.plan.markdown(_cell)
    if result.bake is not None:
        lines += result.bake.markdown(_cell, redact)
    if result.status == "success":
        lines += [f"> {sentence(s)}" for s in result.aftermath]
    lines.append("")
    return "\n".join(lines) + "\n"


def _rows(result: Result, config: Config | None) -> list[tuple[str, str]]:
    """The summary's key/value table: what the run released, where, which commit."""
    out = result.outputs
    rows: list[tuple[str, str]] = []
    workspace = out["workspace-id"]
    if workspace:
        name = f" ({_cell(result.workspace_name)})" if result.workspace_name else ""
        rows.append(("Workspace", f"`{workspace}`{name}"))
    if out["workspace-url"]:
        rows.append(("Workspace URL", f"<{out['workspace-url']}>"))
    if out["domain-url"]:
        rows.append(("Domain", f"<{out['domain-url']}>"))
    if result.superseded_by:
        rows.append(("Superseded by", _cell(result.superseded_by)))
    if out["previous-workspace-id"]:
        rows.append(("Previous workspace", f"`{out['previous-workspace-id']}`"))
    commit = out["deployed-commit"]
    if commit:
        link = _commit_link(commit, config)
        if result.commit_expected:
            link += f" ⚠️ not {_commit_link(result.commit_expected, config)}, the commit of this run"
        rows.append(("Commit", link))
    if result.health:
        rows.append(("Health check", _cell("; ".join(result.health))))
    return rows
