"""Where ``secret-env`` goes: the workspace's environment variables, or its vault.

``secret-store: env`` (the default): ``env`` and ``secret-env`` together are the
workspace's environment variables (set on create, and on a reused preview).

``secret-store: vault``: ``secret-env`` goes into the workspace's vault
(``POST /vault/teams/{teamId}/workspaces/{workspaceId}``), never into its
environment variables. Codesphere's secret-management guide (a preview
feature): a service reads a secret through a template in ci.yml's env,
``${{ vault.NAME }}``, which Codesphere resolves when it syncs the landscape,
and only the services that reference a secret get its value; the secrets live
as long as the workspace. So the secrets are stored after the workspace runs
and before any stage (the landscape deploy comes right before the run stage),
on every run (a preview's values may change). The log counts them, never names
them. The guide describes templates for landscapes (multi-server workspaces)
only; on a workspace that is not one, the landscape step says so.
"""

from __future__ import annotations

from ..context import Context
from ..models import EnvVar
from ..timings import Deadline


def in_vault(ctx: Context) -> bool:
    """Whether this run puts secret-env into the vault (and there is any)."""
    config = ctx.config
    return config.create.to_vault and bool(config.secret_names)


def workspace_env(ctx: Context) -> tuple[EnvVar, ...]:
    """The environment variables to set: env and secret-env, or env alone when
    secret-env goes into the vault."""
    config = ctx.config
    if not in_vault(ctx):
        return config.env
    return tuple(var for var in config.env if var.name not in config.secret_names)


def store_in_vault(ctx: Context, workspace_id: int, deadline: Deadline) -> None:
    """With ``secret-store: vault``: store secret-env in the workspace's vault."""
    config = ctx.config
    if not config.create.to_vault:
        return
    if not config.secret_names:
        ctx.reporter.info("secret-store is vault, but secret-env is empty: nothing to store")
        return
    assert config.team_id is not None  # the flows that create need it
    secrets = {var.name: var.value for var in config.env if var.name in config.secret_names}
    ctx.client.store_workspace_secrets(config.team_id, workspace_id, secrets, deadline=deadline)
    count = len(secrets)
    ctx.reporter.info(
        f"{count} secret{'s' if count != 1 else ''} of secret-env stored in the vault of "
        f"workspace {workspace_id} (ci.yml reads them as ${{{{ vault.NAME }}}})"
    )
