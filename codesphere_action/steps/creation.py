"""Creating a release workspace exactly once, and cleaning up after a failure.

Shared by the flows that create a workspace (zero-downtime, preview).

``POST /workspaces`` is not idempotent and its answer may come late or never:
- it is given up to ``CREATE_READ_SECONDS`` to answer (a slow create is
  awaited, not repeated);
- when its outcome is unknown (the connection broke after sending, no answer
  in time, a 5xx from a gateway, an answer that is not Codesphere's JSON), the
  team is searched for a workspace of this name carrying this run's mark for
  up to ``CREATE_SETTLE_SECONDS`` before creating again;
- after a second create, a late first one (a "twin": same name, same run) is
  deleted at the end of the run, whatever its outcome.
After a failure or cancellation the workspace this run created is deleted
(``cleanup-on-failure``) unless a domain routes to it; one it did not create
is never touched. The cleanup retries within the cancel budget and says what
really happened: a delete that failed is checked before it is reported so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..context import Context
from ..errors import ActionError, Cancelled, NotFound, Rejected, WaitTimeout, outcome_unknown
from ..github import format_seconds
from ..models import CreateWorkspace, Workspace
from ..timings import (
    CLEANUP_SECONDS,
    CREATE_SETTLE_SECONDS,
    DELETE_RESERVE,
    MARK_SECONDS,
    OUTCOME_GRACE_SECONDS,
    SWITCH_READ_SECONDS,
    Deadline,
)
from .ownership import Mark, delete_unless_serving, exists, is_ours, new_mark, read_mark
from .secrets import workspace_env


@dataclass
class State:
    """What a run has changed so far, for the cleanup and the error's aftermath."""

    name: str
    mark: Mark
    created_id: int | None = None
    creating: bool = False  # a create request is under way: its outcome is unknown
    created_twice: bool = False  # a second create after an unknown first: look for twins
    switched: bool = False
    switch_unknown: bool = False  # a switch request whose outcome is unknown
    switched_back: bool = False  # the domain check failed and the switch was undone
    # The switched release stands: a clean bake passed (a canary: its completion
    # landed). A cancel no longer undoes it (``bake.undone_if_cancelled``).
    settled: bool = False
    domain_checked: bool = False  # the app answered through the domain after the switch
    domain_note: str = ""  # where the domain was left, when no other sentence says it
    previous: list[int] = field(default_factory=list)
    # The switch: the key of the domain's map it changed (domain-path as the map
    # spells it) and the ids it pointed that path at.
    path: str = ""
    targets: list[int] = field(default_factory=list)
    # Ids the domain's map lists that no longer exist (the Check phase): never
    # previous, never deleted, never a way back.
    stale: set[int] = field(default_factory=set)
    # The workspaces whose mark this run set to released (``record_released``),
    # with the mark as it was before: a switch back writes that back.
    released: dict[int, Mark] = field(default_factory=dict)

    @classmethod
    def for_run(cls, ctx: Context) -> State:
        return cls(name=ctx.config.workspace_name, mark=new_mark(ctx.config))


def create_body(ctx: Context, state: State) -> CreateWorkspace:
    config, settings = ctx.config, ctx.config.create
    assert config.team_id is not None and config.plan_id is not None  # the spec needs them
    return CreateWorkspace(
        team_id=config.team_id,
        name=state.name,
        plan_id=config.plan_id,
        is_private_repo=config.private_repo,
        replicas=config.replicas,
        git_url=config.git_url,
        initial_branch=config.branch,
        env=(*workspace_env(ctx), state.mark.as_env()),
        base_image=settings.base_image,
        clone_depth=settings.clone_depth,
        restricted=settings.restricted,
        shared_vault_name=settings.shared_vault_name,
        storage_mib=settings.storage_mib,
        vpn_config=settings.vpn_config,
    )


def check_base_image(ctx: Context, deadline: Deadline) -> None:
    """With ``base-image``: fail before the create when Codesphere does not offer
    it (as the official CLI checks), naming the ones it does. A list that cannot
    be read is no reason to stop: the create then says what is wrong."""
    wanted = ctx.config.create.base_image
    if not wanted:
        return
    try:
        images = ctx.client.list_base_images(deadline=deadline)
    except ActionError as exc:
        ctx.reporter.warning(f"could not list the base images to check base-image: {exc}")
        return
    if any(image.id == wanted for image in images):
        return
    offered = ", ".join(f"{i.id} ({i.name})" if i.name else i.id for i in images) or "none"
    raise ActionError(
        f"base-image '{wanted}' is not one of the base images Codesphere offers: {offered}. "
        "Set base-image to one of them, or leave it empty for Codesphere's default"
    )


def create_workspace(ctx: Context, state: State, deadline: Deadline) -> Workspace:
    """Create the workspace named ``state.name`` once, even when the create's
    answer is lost; set ``workspace-id``. The caller made sure the name is free.
    ``deadline``: the phase's (``workspace-timeout``), which the wait for the
    workspace to run that follows shares."""
    client = ctx.client
    check_base_image(ctx, deadline)
    body = create_body(ctx, state)
    state.creating = True
    try:
        workspace = client.create_workspace(body, deadline=deadline)
    except ActionError as exc:
        if not outcome_unknown(exc):
            if isinstance(exc, Rejected):
                state.creating = False  # turned down (e.g. 402): nothing to look for
            # Otherwise (a proxy's 4xx, a TLS error, a refused redirect) it may have
            # been made all the same: the cleanup looks for it (this run's mark).
            raise _explained(ctx, exc) from None
        ctx.reporter.warning(f"Creating {state.name} may have failed ({exc}); looking it up")
        found = _wait_for_own(ctx, state, deadline.grace(OUTCOME_GRACE_SECONDS))
        if found is not None:
            workspace = found
            ctx.reporter.info(f"The create had landed: workspace {workspace.id}")
        elif deadline.expired:
            raise WaitTimeout(
                f"creating workspace {state.name} did not finish within "
                f"{format_seconds(deadline.seconds)} (input 'workspace-timeout'): {exc}"
            ) from None
        else:
            ctx.reporter.info(f"No workspace {state.name} appeared: creating it again")
            state.created_twice = True
            workspace = client.create_workspace(body, deadline=deadline)
    state.created_id = workspace.id
    state.creating = False
    ctx.result.set("workspace-id", workspace.id)
    return workspace


def _explained(ctx: Context, error: ActionError) -> ActionError:
    team = ctx.config.team_id
    if isinstance(error, Rejected) and error.status_code == 402:
        return ActionError(
            f"Codesphere refused to create a workspace in team {team} (input "
            f"'team-id'): {error}. The team has no billing information: add a payment method "
            "in the team's settings in Codesphere (or use another team), then re-run the job"
        )
    vault = ctx.config.create.shared_vault_name
    if isinstance(error, Rejected) and vault and "vault" in str(error).lower():
        return ActionError(
            f"Codesphere refused to create the workspace with the shared vault '{vault}' "
            f"(input 'shared-vault-name'): {error}. Create the shared vault in team {team} "
            "first, or correct the name"
        )
    return error


def own_workspaces(ctx: Context, state: State, deadline: Deadline) -> list[Workspace]:
    """Workspaces of the team named ``state.name`` that this run of the action
    made (its mark's ``id``)."""
    team_id = ctx.config.team_id
    assert team_id is not None
    found = []
    for workspace in ctx.client.list_team_workspaces(team_id, deadline=deadline):
        if workspace.name != state.name:
            continue
        mark = read_mark(ctx, workspace.id, deadline)
        if is_ours(ctx.config, mark) and mark is not None and mark.nonce == state.mark.nonce:
            found.append(workspace)
    return sorted(found, key=lambda w: w.id)


def _wait_for_own(ctx: Context, state: State, deadline: Deadline) -> Workspace | None:
    def check(limit: Deadline) -> Workspace | None:
        found = own_workspaces(ctx, state, limit)
        return found[0] if found else None

    try:
        return ctx.waiter.poll(
            check, deadline=deadline.within(CREATE_SETTLE_SECONDS), what=f"looking up {state.name}"
        )
    except WaitTimeout:
        return None


def remove_twins(ctx: Context, state: State) -> None:
    """After a second create: delete a late first one (same name, same run)."""
    if not state.created_twice or state.created_id is None:
        return
    deadline = ctx.deadline(CLEANUP_SECONDS)
    try:
        for twin in own_workspaces(ctx, state, deadline):
            if twin.id == state.created_id:
                continue
            kept = delete_unless_serving(ctx, twin.id, deadline)
            if kept:
                ctx.reporter.warning(f"Workspace {twin.id}, a twin, serves {', '.join(kept)}")
            else:
                ctx.reporter.warning(f"Deleted workspace {twin.id}, a twin a late create made")
    except ActionError as exc:
        ctx.result.aftermath.append(
            f"a second workspace named {state.name} may exist (the first create's answer was "
            f"lost); checking for it failed: {exc}. Delete it by hand if it shows up"
        )


def record_released(
    ctx: Context, state: State, workspace_id: int, deadline: Deadline, mark: Mark | None = None
) -> str:
    """Write into the workspace's mark that its release is released, naming the
    workspaces this run's switch replaced (``state.previous``, the way back);
    ``mark``: the workspace's mark as it is (this run's own by default). Each
    answer is awaited ``SWITCH_READ_SECONDS`` at most. Return "" when done, else
    what failed; a write whose outcome is unknown counts as done for the switch
    back (``restore_marks``), which writes the old mark again."""
    before = mark or state.mark
    after = before.released(state.previous)
    try:
        ctx.client.set_env_vars(
            workspace_id, [after.as_env()], deadline=deadline, read_timeout=SWITCH_READ_SECONDS
        )
    except ActionError as exc:
        if outcome_unknown(exc):
            state.released[workspace_id] = before
        return str(exc)
    state.released[workspace_id] = before
    return ""


def restore_marks(ctx: Context, state: State, deadline: Deadline) -> None:
    """After a switch back: the marks ``record_released`` changed, as they were
    (the release did not stand, so it is no way back). One that cannot be
    written is a warning: it still says released."""
    for workspace_id, mark in list(state.released.items()):
        try:
            ctx.client.set_env_vars(
                workspace_id, [mark.as_env()], deadline=deadline, read_timeout=SWITCH_READ_SECONDS
            )
        except ActionError as exc:
            ctx.reporter.warning(
                f"could not set workspace {workspace_id}'s mark back to state={mark.state} after "
                f"the switch back ({exc}): it says released though it no longer serves"
            )
            continue
        del state.released[workspace_id]


def clean_up(ctx: Context, state: State, *, cancelled: bool) -> None:
    """After a failure or cancellation: never leave a half-made workspace behind,
    never touch the domain; say what state things are in. Retries within the
    cancel budget (the client cuts every request to it)."""
    config = ctx.config
    if state.created_id is None and state.creating:
        _find_cut_off_create(ctx, state)
    deadline = ctx.deadline(CLEANUP_SECONDS)  # cut to the cancel budget after a signal
    created = state.created_id
    untouched = f"the domain {config.domain} is untouched" if config.domain else ""
    if state.switched_back:
        untouched = f"the domain {config.domain} points where it did before the release"
    untouched = state.domain_note or untouched

    def tell(what: str) -> None:
        ctx.result.aftermath.append("; ".join(part for part in (what, untouched) if part))

    if state.switched:
        if created is not None and created not in state.released:
            # Cut off right after the switch (a cancel): the new workspace serves,
            # so its mark must say released (within the cancel budget).
            failed = record_released(ctx, state, created, deadline.within(MARK_SECONDS))
            if failed:
                ctx.result.aftermath.append(
                    f"the mark of workspace {created} could not be set to released ({failed})"
                )
        before = ids(state.previous) or "nothing"
        checked = "" if state.domain_checked else ", not yet checked through the domain"
        new = f"the new workspace {created}"
        if len(state.targets) > 1:  # a canary beside the previous ones
            new = f"workspace {ids(state.targets)} ({new} among them)"
        ctx.result.aftermath.append(
            f"the domain {config.domain_url} points at {new}{checked}; "
            "nothing was undone. To go back: flow: rollback with workspace-id "
            + id_list(state.previous)
            if state.previous
            else f"the domain {config.domain_url} points at {new}{checked} (before: {before}); "
            "nothing was undone"
        )
        return
    if created is None:
        if untouched:
            tell("")
        return
    if state.switch_unknown:
        ctx.result.aftermath.append(
            f"the switch of {config.domain_url} to workspace {created} may still land, so "
            f"workspace {created} was kept: check the domain in Codesphere"
        )
        return
    if not config.cleanup_on_failure:
        tell(f"the new workspace {created} was kept (cleanup-on-failure: false)")
        return
    tell(_delete_created(ctx, state, created, deadline))
    remove_twins(ctx, state)


def taken_by(ctx: Context, state: State, workspace_id: int, deadline: Deadline) -> str:
    """Who holds the workspace now when its mark no longer carries this run's
    ``id`` ("run 4711.1": another run of the pull request took the preview
    over); "" while it does. Read right before it matters: a preview changes
    hands. Raises ActionError when the mark cannot be read (404: the workspace
    is gone)."""
    mark = read_mark(ctx, workspace_id, deadline)
    if mark is not None and mark.nonce == state.mark.nonce:
        return ""
    if mark is None:
        return "a run that removed its mark"
    return f"run {mark.run}"


def _held_elsewhere(ctx: Context, state: State, created: int, deadline: Deadline) -> str:
    """What to say when the workspace this run created must not be deleted
    because it is not this run's any more (or that cannot be told); "" to go on."""
    try:
        holder = taken_by(ctx, state, created, deadline)
    except ActionError as exc:
        if isinstance(exc, NotFound):
            return f"the new workspace {created} is gone already"
        return (
            f"the new workspace {created} was kept: whether another run of the pull request "
            f"took it over could not be checked ({exc}); delete it by hand if no run uses it"
        )
    if not holder:
        return ""
    return (
        f"the new workspace {created} was kept: {holder} took it over (a preview run of the "
        "same pull request), so it is that run's now"
    )


def _find_cut_off_create(ctx: Context, state: State) -> None:
    """A create was under way when the run ended: its workspace may show up a
    moment later. Look for it (this run's mark) for as long as the cancel budget
    allows, keeping ``DELETE_RESERVE`` seconds to delete it."""
    deadline = ctx.deadline(CREATE_SETTLE_SECONDS)
    left = ctx.guard.remaining()
    if left is not None:
        deadline = deadline.within(max(0.0, left - DELETE_RESERVE))
    timeout = deadline.left()

    def check(limit: Deadline) -> Workspace | None:
        found = own_workspaces(ctx, state, limit)
        return found[0] if found else None

    try:
        found = check(deadline) or ctx.waiter.poll(
            check, deadline=deadline, what=f"looking up {state.name}"
        )
    except (ActionError, Cancelled):
        found = None
    if found is not None:
        state.created_id = found.id
        return
    ctx.result.aftermath.append(
        f"the create of workspace {state.name} was cut off and its workspace did not show "
        f"up within {timeout:.0f} s; should it appear, it carries the mark "
        f"'{state.mark.render()}': delete it by hand"
    )


def _delete_created(ctx: Context, state: State, created: int, deadline: Deadline) -> str:
    """Delete the workspace this run created unless it serves a domain, or (a
    preview) another run of its pull request took it over: its mark is read
    last, right before the DELETE. Return what happened, as a sentence."""
    held: list[str] = []

    def kept_by(limit: Deadline) -> str:
        held.append(_held_elsewhere(ctx, state, created, limit))
        return held[-1]

    preview = state.mark.pr is not None

    def delete() -> list[str]:
        return delete_unless_serving(ctx, created, deadline, kept_by=kept_by if preview else None)

    try:
        try:
            kept = delete()
        except Cancelled:
            # The runner's first signal cut the request in flight: the cancel budget
            # (every request is cut to it now) still has time to finish the job.
            kept = delete()
    except (ActionError, Cancelled) as exc:
        # The delete may have landed although its answer did not: ask before telling.
        still = exists(ctx, created, deadline)
        if still is False:
            return f"the new workspace {created} was deleted"
        if still is None:
            return (
                f"deleting the new workspace {created} could not be confirmed ({exc}): check "
                "the team and delete it by hand if it is still there"
            )
        return (
            f"deleting the new workspace {created} failed ({exc}) and it still exists: "
            "delete it by hand"
        )
    if held and held[-1]:
        return held[-1]
    if kept:
        return f"the new workspace {created} was kept: it serves {', '.join(kept)}"
    return f"the new workspace {created} was deleted"


def ids(values: Iterable[int]) -> str:
    return ", ".join(str(i) for i in values)


def id_list(values: Iterable[int]) -> str:
    """Ids as the outputs give them and the workspace-id input of rollback takes them."""
    return ",".join(str(i) for i in values)
