"""dry-run: a flow reads and checks what it needs, says what it would do, and stops.

Each flow decides in its Check phase (the name, the workspace to pull into,
the map the switch would write, what it would delete and keep) and puts
those decisions into a ``Plan``; ``stop_if_dry_run`` is the line in the flow
past which a dry run never goes. The real run goes on from the same
decisions, so a plan is never a second copy of the rules. The guarantee that
nothing is written is the transport's (``read_only``): a POST, PUT, PATCH or
DELETE in a dry run is a bug and fails the run before it is sent.

The helpers here word the decisions the same way in every flow: the create
(from the very body the real create sends), the stages, the switch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..context import Context
from ..dotenv import MARK_NAME
from ..errors import Planned
from ..github import format_seconds
from ..models import DomainMap, EnvVar, Workspace
from ..plan import Plan, describe_map
from ..timings import CHECK_SECONDS
from .creation import State, create_body
from .ownership import Start, read_mark
from .release import DELETE, KEEP, TeamMarks, copied, previous_verdict
from .secrets import in_vault
from .stages import stage_plan


def stop_if_dry_run(ctx: Context, plan_of: Callable[[], Plan]) -> None:
    """In a dry run: make the plan (``plan_of``, from the decisions the flow made
    so far; a real run never pays for it), print it (the log and the job
    summary) and raise Planned. Otherwise nothing."""
    if not ctx.config.dry_run:
        return
    plan = plan_of()
    ctx.result.plan = plan
    with ctx.reporter.group("Plan (dry run: nothing is changed)"):
        for line in plan.log_lines():
            ctx.reporter.info(line)
    what = plan.headline or "nothing"
    raise Planned(
        f"dry run: the {ctx.config.flow} flow would {what}; nothing was changed (the plan is "
        "in the log and the job summary). Remove dry-run to carry it out"
    )


def label(workspace: Workspace) -> str:
    """How a plan names a workspace: ``1002 (shop-old)``."""
    return f"{workspace.id} ({workspace.name})" if workspace.name else str(workspace.id)


def env_names(ctx: Context, variables: Iterable[EnvVar]) -> str:
    """The names of the env variables a write sets (never a value; the
    secret-env ones only counted, the mark left out), "" for none."""
    names = [v.name for v in variables if v.name != MARK_NAME]
    plain = [name for name in names if name not in ctx.config.secret_names]
    secret = len(names) - len(plain)
    return " and ".join(
        part for part in (", ".join(plain), f"{secret} from secret-env" if secret else "") if part
    )


def vault_steps(ctx: Context, where: str) -> list[str]:
    """With ``secret-store: vault``: the step that stores secret-env in the vault
    of ``where`` (as ``steps/secrets.py`` does, after it runs and before any
    stage), the secrets counted, never named; [] otherwise."""
    config = ctx.config
    if not config.create.to_vault:
        return []
    if not in_vault(ctx):
        return ["secret-store is vault, but secret-env is empty: nothing to store in the vault"]
    count = len(config.secret_names)
    return [
        f"Store {count} secret{'s' if count != 1 else ''} of secret-env in the vault of {where} "
        "once it runs, before any stage (ci.yml reads them as ${{ vault.NAME }}), not as "
        "environment variables (secret-store: vault)"
    ]


def create_step(ctx: Context, state: State) -> str:
    """The create, worded from the body the real create sends: the name, team,
    plan, replicas, branch and repository, the env's names (never a value; the
    secret-env ones only counted: with secret-store: vault none, they go to the
    vault, ``vault_steps``) and the mark."""
    body = create_body(ctx, state)
    env = env_names(ctx, body.env)
    replicas = f"{body.replicas} replica{'s' if body.replicas != 1 else ''}"
    branch = f", branch {body.initial_branch}" if body.initial_branch else ""
    source = f" of {body.git_url}" if body.git_url else ""
    return (
        f"Create workspace {body.name} in team {body.team_id}: plan {body.plan_id}, {replicas}"
        f"{branch}{source}; env {env or 'none'}, and its mark CODESPHERE_RELEASE="
        f"{state.mark.render()}"
    )


def stage_steps(ctx: Context) -> list[str]:
    """The stages the release runs (``stage_plan`` and run), and its health check."""
    config = ctx.config
    profile = f" (profile {config.profile}: ci.{config.profile}.yml)" if config.profile else ""
    steps = [
        f"Stages: {', '.join([*stage_plan(ctx), 'run'])}{profile}, each within "
        f"{format_seconds(config.stage_timeout)}; a multi-server landscape is deployed before run"
    ]
    health = config.health
    if health.path:
        accepted = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in health.statuses)
        steps.append(
            f"Health check: GET {health.path} on the workspace until it answers {accepted}, "
            f"within {format_seconds(health.timeout)}"
        )
    return steps


def switch_plan(
    ctx: Context, plan: Plan, current: DomainMap, key: str, after: list[object], what: str
) -> None:
    """The switch: ``domain-path`` (the map's ``key``) pointed at ``after`` (ids,
    or a label for a workspace not made yet), named ``what`` in the step; every
    other path as it is."""
    config = ctx.config
    plan.steps.append(f"Point {config.domain_url} at {what}")
    plan.domain = config.domain
    plan.before = describe_map(current)
    plan.after = describe_map({**{path: list(ids) for path, ids in current.items()}, key: after})


def previous_rows(
    ctx: Context,
    plan: Plan,
    previous: list[int],
    key: str,
    *,
    started: Start | None,
    serving: dict[int, list[str]],
) -> None:
    """The workspaces the switch replaces (``previous``), deleted or kept as
    ``delete_previous`` decides (``previous_verdict``), with the routes that
    reach them (``serving``) but the one switched."""
    config = ctx.config
    deadline = ctx.deadline(CHECK_SECONDS)
    route = f"{config.domain}{key}".rstrip("/")
    team: list[TeamMarks] = []
    for workspace_id in previous:
        shown = label(ctx.client.get_workspace(workspace_id, deadline=deadline))
        if not config.delete_previous:
            plan.keep(shown, f"it served {key} before (delete-previous: false)")
            continue
        others = [r for r in serving.get(workspace_id, []) if r.rstrip("/") != route]
        mark = read_mark(ctx, workspace_id, deadline)
        verdict, why = previous_verdict(ctx, mark, started=started, serving=others, path=key)
        copy = copied(ctx, workspace_id, mark, deadline, team) if verdict == DELETE else ""
        if copy:
            verdict, why = KEEP, copy
        (plan.delete if verdict == DELETE else plan.keep)(shown, why)
