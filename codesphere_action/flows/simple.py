"""The simple flow: release into the live workspace (pull, rebuild, restart).

The app is down while its run stage restarts (the stop, the landscape
deploy, the start, until its servers run again); ``zero-downtime`` avoids
that. A failure after the pull leaves the workspace at the new commit with
whatever stage failed not rebuilt: the app keeps running the old build until
the run stage restarts, and the next release (or a re-run) rebuilds it.
"""

from __future__ import annotations

from ..context import Context
from ..github import count, format_seconds
from ..models import Workspace
from ..plan import Plan
from ..steps.dry_run import label, stage_steps, stop_if_dry_run
from ..steps.stages import run_stage, stage_plan
from ..steps.verify import check_commit, check_health
from ..steps.workspace import (
    ensure_running,
    get_workspace,
    git_pull,
    pull_target,
    record_workspace,
)
from ..timings import CHECK_SECONDS


def run(ctx: Context) -> None:
    config = ctx.config
    workspace_id = config.workspace_id
    assert workspace_id is not None  # its spec needs it
    ctx.result.set("workspace-id", workspace_id)

    with ctx.phase("Workspace") as phase:
        workspace = get_workspace(ctx, workspace_id, "workspace-id", ctx.deadline(CHECK_SECONDS))
        record_workspace(ctx, workspace)
        ctx.reporter.info(f"Releasing into workspace {workspace_id} ({ctx.result.workspace_name})")
        stop_if_dry_run(ctx, lambda: _plan(ctx, workspace))
        if ensure_running(ctx, workspace, ctx.deadline(config.workspace_timeout)):
            phase.detail = "woken up"

    with ctx.phase("Git pull") as phase:
        deadline = ctx.deadline(config.stage_timeout)  # a large repository's pull takes a while
        git_pull(ctx, workspace_id, deadline)
        head = ctx.client.git_head(workspace_id, deadline=deadline)
        ctx.result.set("deployed-commit", head)
        phase.detail = f"at {head[:7]}"
        # Before anything is rebuilt: with require-commit the running app stays as it was.
        check_commit(ctx)

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace_id, stage)
    run_stage(ctx, workspace_id, "run")  # stops the running app first

    record_workspace(ctx, workspace)  # deployed-commit was read after the pull
    check_health(ctx, workspace)


def _plan(ctx: Context, workspace: Workspace) -> Plan:
    """The dry run's plan: wake (when it sleeps), pull, the stages."""
    shown = label(workspace)
    plan = Plan(headline=f"pull {pull_target(ctx)} into workspace {shown} and rebuild it")
    deadline = ctx.deadline(CHECK_SECONDS)
    now = ""
    if not ctx.client.is_running(workspace.id, deadline=deadline):
        replicas = max(1, workspace.replicas)
        plan.steps.append(
            f"Wake workspace {shown}: it is not running ({count(replicas, 'replica')}, within "
            f"{format_seconds(ctx.config.workspace_timeout)})"
        )
    else:
        now = f", now at {ctx.client.git_head(workspace.id, deadline=deadline)[:7]}"
    plan.steps.append(f"git pull {pull_target(ctx)} in workspace {shown}{now}")
    plan.steps += stage_steps(ctx)
    plan.steps.append("Restart the run stage: the app is down until its servers run again")
    return plan
