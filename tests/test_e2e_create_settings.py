"""End to end: the workspace settings a create takes (issue 20, item 5).

The spec's create call accepts ``baseImage``, ``cloneDepth``, ``restricted``,
``sharedVaultName``, ``storageMib`` and ``vpnConfig``; the flows that create a
workspace (zero-downtime, preview) offer each as an input. Each one is
validated before any request, reaches the emulator's create exactly as set
(and validates against the spec: the ``emu`` fixture fails the test on any
request off the spec), and is left out of the body when not set. The flows
that do not create say in one warning that they ignore them.

``secret-store: vault`` puts ``secret-env`` into the new workspace's vault
(``POST /vault/teams/{teamId}/workspaces/{workspaceId}``) instead of its
environment variables, before the landscape deploy that resolves ci.yml's
``${{ vault.KEY }}`` templates (Codesphere's secret-management guide). The
emulator plays those templates: a deploy fails with "Invalid templating
reference" while a key is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PREVIEW, pr_event
from emulator.runner import TOKEN, Runner

from .test_e2e_health import HEALTH
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs

SECRET = "pw-Vault-9f2c71"
SETTINGS: list[tuple[str, str, str, Any]] = [
    # input, value, field of the create body, value sent
    ("base-image", "ubuntu-22.04", "baseImage", "ubuntu-22.04"),
    ("clone-depth", "1", "cloneDepth", 1),
    ("restricted", "true", "restricted", True),
    ("restricted", "FALSE", "restricted", False),
    ("shared-vault-name", "shop-secrets", "sharedVaultName", "shop-secrets"),
    ("storage-mib", "20480", "storageMib", 20480),
    ("vpn-config", "office-vpn", "vpnConfig", "office-vpn"),
]
NEW_FIELDS = {"baseImage", "cloneDepth", "restricted", "sharedVaultName", "storageMib", "vpnConfig"}


def create_body(emu: Emulator) -> dict[str, Any]:
    (create,) = emu.find_requests("POST", "/workspaces")
    assert isinstance(create.body, dict)
    return create.body


def preview_run(emu: Emulator, runner: Runner, **more: str) -> Any:
    emu.set_branch_head(BRANCH, HEAD)
    return runner.run(zd_inputs(emu, flow="preview", **more), extra=pr_event(runner))


# ------------------------------------------------------------------ each setting ------
@pytest.mark.parametrize(("name", "value", "field", "sent"), SETTINGS)
@pytest.mark.parametrize("flow", ["zero-downtime", "preview"])
def test_each_setting_reaches_the_create_as_set(
    emu: Emulator, runner: Runner, flow: str, name: str, value: str, field: str, sent: Any
) -> None:
    emu.add_shared_vault(TEAM, "shop-secrets")
    if flow == "preview":
        result = preview_run(emu, runner, **{name: value})
    else:
        result = runner.run(zd_inputs(emu, **{name: value}))
    assert result.returncode == 0, result.stdout
    body = create_body(emu)
    assert body[field] == sent
    assert not (NEW_FIELDS - {field}) & set(body), "a setting that was not set was sent"
    (new,) = created(emu)
    shown = emu.workspace(new).to_json()
    if field in shown:
        assert shown[field] == sent
    assert emu.spec_violations == []


def test_unset_settings_are_not_sent(emu: Emulator, runner: Runner) -> None:
    result = runner.run(zd_inputs(emu, **{n: "" for n, *_ in SETTINGS}))
    assert result.returncode == 0, result.stdout
    assert not NEW_FIELDS & set(create_body(emu))
    assert not emu.find_requests("GET", "/metadata/workspace-base-images")


def test_a_restricted_workspace_is_health_checked_with_the_token(
    emu: Emulator, runner: Runner
) -> None:
    emu.serve_apps()
    result = runner.run(zd_inputs(emu, restricted="true", **HEALTH))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert create_body(emu)["restricted"] is True and emu.workspace(new).restricted
    hits = [r for r in emu.app_requests if r.listener == f"app:{new}"]
    assert hits and all(r.headers.get("x-cs-authorization") == f"Bearer {TOKEN}" for r in hits)
    assert hits[-1].status == 200  # the dev domain is restricted: without it, 401
    result.assert_no_token()


def test_a_base_image_codesphere_does_not_offer_fails_before_the_create(
    emu: Emulator, runner: Runner
) -> None:
    result = runner.run(zd_inputs(emu, **{"base-image": "ubuntu-18.04"}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "base-image 'ubuntu-18.04'" in error
    assert "ubuntu-24.04" in error and "ubuntu-22.04" in error  # what it offers
    assert not emu.find_requests("POST", "/workspaces")


def test_a_shared_vault_the_team_does_not_have_is_named_in_the_error(
    emu: Emulator, runner: Runner
) -> None:
    result = runner.run(zd_inputs(emu, **{"shared-vault-name": "nope"}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "Shared vault not found" in error and "shared-vault-name" in error
    assert created(emu) == []


BAD: list[tuple[str, str, str]] = [
    ("base-image", "ubuntu 24.04", "'ubuntu 24.04'"),
    ("clone-depth", "0", "'0'"),
    ("clone-depth", "shallow", "'shallow'"),
    ("restricted", "yes", "'yes'"),
    ("shared-vault-name", "a/b", "'a/b'"),
    ("storage-mib", "-5", "'-5'"),
    ("storage-mib", "10GB", "'10GB'"),
    ("vpn-config", "x" * 300, "at most"),
    ("secret-store", "keychain", "'keychain'"),
]


@pytest.mark.parametrize(("name", "value", "said"), BAD, ids=[f"{n}={v[:12]}" for n, v, _ in BAD])
def test_a_bad_setting_fails_before_any_request_naming_the_input(
    emu: Emulator, runner: Runner, name: str, value: str, said: str
) -> None:
    result = runner.run(zd_inputs(emu, **{name: value}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert f"input '{name}'" in error or f"{name}:" in error or f"'{name}'" in error, error
    assert said in error
    assert emu.requests == []


@pytest.mark.parametrize(
    ("flow", "extra"),
    [
        ("simple", {"workspace-id": "1001"}),
        ("promote", {"workspace-id": "1001", "domain": DOMAIN}),
    ],
)
def test_a_flow_that_does_not_create_warns_once_that_it_ignores_them(
    emu: Emulator, runner: Runner, flow: str, extra: dict[str, str]
) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop")
    if flow == "promote":
        emu.add_domain(TEAM, DOMAIN, {"/": []})
        from emulator.runner import start_app  # noqa: PLC0415

        start_app(emu, ws, token=TOKEN)
    inputs = zd_inputs(
        emu,
        flow=flow,
        **{**extra, "workspace-id": str(ws)},
        **{"clone-depth": "1", "vpn-config": "office-vpn", "secret-store": "vault"},
    )
    result = runner.run(inputs)
    assert result.returncode == 0, result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    (warning,) = [w for w in warnings if "clone-depth" in w]
    assert warning.startswith("::warning title=Inputs ignored::")
    # action.yml's order; the flows that read them after each group
    assert "secret-store, clone-depth, vpn-config (zero-downtime, canary, preview)" in warning
    assert f"The {flow} flow ignores these inputs" in warning
    assert "office-vpn" not in warning and "vault" not in warning.replace("secret-store", "")
    assert not emu.find_requests("POST", "/workspaces")


# ------------------------------------------------------------------ the vault ---------
def vault_setup(emu: Emulator) -> None:
    """A multi-server landscape whose ci.yml reads DB_PASSWORD from the vault."""
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    emu.defaults_for_new_workspaces(
        landscape="multi", ci_servers=["web"], vault_refs=["DB_PASSWORD"]
    )


def test_secret_env_goes_into_the_vault_before_the_landscape_deploy(
    emu: Emulator, runner: Runner
) -> None:
    vault_setup(emu)
    inputs = zd_inputs(
        emu,
        domain=DOMAIN,
        env="MODE=prod",
        **{"secret-env": f"DB_PASSWORD={SECRET}", "secret-store": "vault"},
    )
    result = runner.run(inputs)
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    names = [e["name"] for e in create_body(emu)["env"]]
    assert names == ["MODE", "CODESPHERE_RELEASE"]  # the secret is not an env var
    assert "DB_PASSWORD" not in emu.workspace(new).env
    assert emu.vault(new) == {"DB_PASSWORD": SECRET}
    (store,) = emu.find_requests("POST", rf"/vault/teams/{TEAM}/workspaces/{new}")
    (deploy,) = emu.find_requests("POST", rf"/workspaces/{new}/landscape/deploy")
    assert store.time < deploy.time
    assert emu.workspace(new).deploys[-1].vault == {"DB_PASSWORD": SECRET}  # the services got it
    assert "1 secret of secret-env stored in the vault of workspace" in result.stdout
    assert SECRET not in result.stdout.replace(f"::add-mask::{SECRET}", "")
    assert SECRET not in result.summary
    result.assert_no_token()


def test_without_the_vault_a_ci_yml_that_reads_it_fails_at_the_deploy(
    emu: Emulator, runner: Runner
) -> None:
    vault_setup(emu)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"secret-env": f"DB_PASSWORD={SECRET}"}))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "Invalid templating reference" in error and "${{ vault.DB_PASSWORD }}" in error
    assert "secret-store: vault" in error  # the way out


def test_a_preview_stores_its_secrets_in_the_vault_on_every_push(
    emu: Emulator, runner: Runner
) -> None:
    emu.defaults_for_new_workspaces(
        landscape="multi", ci_servers=["web"], vault_refs=["DB_PASSWORD"]
    )
    vault = {"secret-store": "vault", "secret-env": f"DB_PASSWORD={SECRET}"}
    first = preview_run(emu, runner, **vault)
    assert first.returncode == 0, first.stdout
    (ws,) = [w.id for w in emu.workspaces(TEAM, name=PREVIEW)]
    again = preview_run(emu, runner, **{**vault, "secret-env": "DB_PASSWORD=rotated-2"})
    assert again.returncode == 0, again.stdout
    assert emu.vault(ws) == {"DB_PASSWORD": "rotated-2"}
    assert "DB_PASSWORD" not in emu.workspace(ws).env
    assert emu.workspace(ws).deploys[-1].vault == {"DB_PASSWORD": "rotated-2"}


def test_the_vault_on_a_single_server_workspace_warns_that_ci_yml_may_not_see_it(
    emu: Emulator, runner: Runner
) -> None:
    inputs = zd_inputs(emu, **{"secret-store": "vault", "secret-env": f"DB_PASSWORD={SECRET}"})
    result = runner.run(inputs)
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.vault(new) == {"DB_PASSWORD": SECRET}
    (warning,) = [w for w in result.stdout.splitlines() if "vault" in w and "::warning" in w]
    assert "not a multi-server" in warning
