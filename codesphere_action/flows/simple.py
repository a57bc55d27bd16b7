"""The simple flow: release into the live workspace (pull, rebuild, restart).

The app is down while its run stage restarts; ``zero-downtime`` avoids that.
"""

from __future__ import annotations

from ..context import Context
from ..steps import (
    ensure_running,
    get_workspace,
    git_pull,
    record_workspace,
    run_stage,
    stage_plan,
)
from .verify import check_commit, check_health


def run(ctx: Context) -> None:
    workspace_id = ctx.config.workspace_id
    assert workspace_id is not None  # config guarantees it for this flow
    ctx.result.set("workspace-id", workspace_id)

    with ctx.phase("Workspace") as phase:
        workspace = get_workspace(ctx, workspace_id, "workspace-id")
        record_workspace(ctx, workspace)
        ctx.reporter.info(f"Releasing into workspace {workspace_id} ({ctx.result.workspace_name})")
        if ensure_running(ctx, workspace):
            phase.detail = "woken up"

    with ctx.phase("Git pull") as phase:
        git_pull(ctx, workspace_id)
        head = ctx.client.git_head(workspace_id)
        ctx.result.set("deployed-commit", head)
        phase.detail = f"at {head[:7]}"
        # Before anything is rebuilt: with require-commit the running app stays as it was.
        check_commit(ctx)

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace_id, stage)
    run_stage(ctx, workspace_id, "run")  # stops the running app first

    record_workspace(ctx, workspace)  # deployed-commit was read after the pull
    check_health(ctx, workspace)
