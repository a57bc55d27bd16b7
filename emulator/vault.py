"""Codesphere's vault (OpenBao), as the spec's ``/vault/teams/...`` routes offer it.

- Per workspace: ``POST /vault/teams/{teamId}/workspaces/{workspaceId}`` stores a
  map of secrets (upsert; each key's revision ``<n>__<time>`` comes back),
  ``GET .../keys`` lists the names (values are never returned), ``DELETE``
  removes names. The secrets live as long as the workspace (Codesphere's
  secret-management guide: "bound to the lifecycle of the workspace").
- Shared per team: ``GET/POST /vault/teams/{teamId}/shared`` lists / creates a
  named vault, ``POST .../shared/{name}/secrets`` stores, ``GET .../keys``
  lists names, ``DELETE .../shared/{name}[/secrets]`` deletes. A workspace
  created with ``sharedVaultName`` reads that vault too.
- How a workspace reads them (the guide, a preview feature): a service in
  ci.yml references ``${{ vault.KEY }}`` in its env, and Codesphere resolves the
  templates when it syncs the landscape (``landscape/deploy``). The emulator
  plays that: a workspace's ``vault_refs`` are the keys its ci.yml references;
  a deploy resolves each from the workspace's vault, then from its shared
  vault, and answers 400 "Invalid templating reference" naming the first key
  it cannot find (the deploy's ``vault`` then records what the services got).
  Which of the two vaults wins for a key in both is not documented: here the
  workspace's.

The spec lists only 200, 400 and 401 for these routes, so an unknown workspace
or shared vault answers 400 with a title that says which.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from .model import Workspace


class VaultProblem(Exception):
    """A 400 the handler turns into a problem answer."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(title)
        self.title, self.detail = title, detail


@dataclass
class Secrets:
    """One vault: values and the revision number of each key."""

    values: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def store(self, secrets: dict[str, Any], wall: float) -> dict[str, str]:
        moment = _dt.datetime.fromtimestamp(wall, tz=_dt.UTC).isoformat().replace("+00:00", "Z")
        revisions = {}
        for key, value in secrets.items():
            if not isinstance(value, str):
                raise VaultProblem("Invalid secret", f"the value of {key!r} is not a string")
            self.values[key] = value
            self.versions[key] = self.versions.get(key, 0) + 1
            revisions[key] = f"{self.versions[key]}__{moment}"
        return revisions

    def delete(self, keys: list[Any]) -> None:
        for key in keys:
            self.values.pop(str(key), None)
            self.versions.pop(str(key), None)


class Vaults:
    """The workspaces' vaults and the teams' shared vaults of one emulator."""

    def __init__(self) -> None:
        self.workspaces: dict[int, Secrets] = {}
        self.shared: dict[tuple[int, str], Secrets] = {}

    def of(self, ws: Workspace) -> Secrets:
        return self.workspaces.setdefault(ws.id, Secrets())

    def shared_vault(self, team_id: int, name: str) -> Secrets:
        vault = self.shared.get((team_id, name))
        if vault is None:
            raise VaultProblem("Shared vault not found", f"team {team_id} has no vault {name!r}")
        return vault

    def shared_names(self, team_id: int) -> list[str]:
        return sorted(name for team, name in self.shared if team == team_id)

    def resolve(self, ws: Workspace) -> dict[str, str]:
        """The values of the keys ws's ci.yml references; VaultProblem for the first
        one neither its vault nor its shared vault holds."""
        own = self.of(ws).values
        shared: dict[str, str] = {}
        if ws.shared_vault_name:
            found = self.shared.get((ws.team_id, ws.shared_vault_name))
            shared = found.values if found is not None else {}
        resolved = {}
        for key in ws.vault_refs:
            if key in own:
                resolved[key] = own[key]
            elif key in shared:
                resolved[key] = shared[key]
            else:
                raise VaultProblem(
                    "Invalid templating reference", f"ci.yml: ${{{{ vault.{key} }}}} is not defined"
                )
        return resolved
