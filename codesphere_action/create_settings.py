"""The settings of a workspace the action creates (zero-downtime, preview).

The spec's ``POST /workspaces`` takes them beside the required fields; each is
an input, validated before any request and sent only when set (an empty input
leaves Codesphere's default):

- ``base-image`` -> ``baseImage``: an id ``GET /metadata/workspace-base-images``
  lists (checked before the create, as the official CLI does);
- ``clone-depth`` -> ``cloneDepth``: a whole number >= 1, a shallow clone;
- ``restricted`` -> ``restricted``: true makes the dev domain the team's only
  (the health check sends the token there);
- ``shared-vault-name`` -> ``sharedVaultName``: a team's shared vault it reads;
- ``storage-mib`` -> ``storageMib``: a whole number >= 1 of MiB;
- ``vpn-config`` -> ``vpnConfig``: the name of a VPN config of the team.

``secret-store`` says where ``secret-env`` goes: ``env`` (environment
variables, the default) or ``vault`` (the new workspace's vault, which
ci.yml reads as ``${{ vault.NAME }}``; see ``steps/secrets.py``).

A flow that creates nothing ignores them all (``input_uses.py`` names the
ones that were given, for one warning). Standard library only: config reads
it before any request.
"""

from __future__ import annotations

from dataclasses import dataclass

from .inputs import (
    BASE_IMAGE,
    VAULT_NAME,
    Inputs,
    parse_bool,
    parse_choice,
    parse_pattern,
    parse_size,
    parse_text,
)

STORES = ("env", "vault")  # the values of secret-store


@dataclass(frozen=True)
class CreateSettings:
    """What the create sends beyond its required fields ("" / None: not sent)."""

    base_image: str = ""
    clone_depth: int | None = None
    restricted: bool | None = None
    shared_vault_name: str = ""
    storage_mib: int | None = None
    vpn_config: str = ""
    to_vault: bool = False  # secret-store: vault (secret-env into the workspace's vault)


def read_create_settings(inputs: Inputs) -> CreateSettings:
    """The settings, each validated (ConfigError names the input and its value),
    whatever the flow: a bad value is refused even where it would be ignored."""
    base_image = inputs.get("base-image")
    clone_depth = inputs.get("clone-depth")
    restricted = inputs.get("restricted")
    vault = inputs.get("shared-vault-name")
    storage = inputs.get("storage-mib")
    store = parse_choice("secret-store", inputs.get("secret-store", "env"), STORES)
    return CreateSettings(
        base_image=parse_pattern(
            "base-image",
            base_image,
            BASE_IMAGE,
            "expected a base image id such as 'ubuntu-24.04' (cs list baseimages lists them)",
        )
        if base_image
        else "",
        clone_depth=parse_size("clone-depth", clone_depth, "'1' (the last commit only)")
        if clone_depth
        else None,
        restricted=parse_bool("restricted", restricted) if restricted else None,
        shared_vault_name=parse_pattern(
            "shared-vault-name",
            vault,
            VAULT_NAME,
            "expected the name of a shared vault of the team: letters, digits, '_', '.', '-' "
            "(at most 128), such as 'prod-secrets'",
        )
        if vault
        else "",
        storage_mib=parse_size("storage-mib", storage, "'20480' (20 GiB)") if storage else None,
        vpn_config=parse_text("vpn-config", inputs.get("vpn-config")),
        to_vault=store == "vault",
    )
