"""Config parsing: every input validated, errors name the input and the value."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesphere_action.config import load_config
from codesphere_action.create_settings import CreateSettings
from codesphere_action.dotenv import parse_env
from codesphere_action.errors import ConfigError, ContextError
from codesphere_action.inputs import (
    DEFAULT_API_URL,
    parse_api_url,
    parse_bool,
    parse_domain,
    parse_domain_path,
    parse_duration,
)
from codesphere_action.models import CreateWorkspace

TOKEN = "cs-token-7f3a9c"


def env(**inputs: str) -> dict[str, str]:
    result = {"INPUT_API-TOKEN": TOKEN, "INPUT_WORKSPACE-ID": "42"}
    for name, value in inputs.items():
        result["INPUT_" + name.upper().replace("_", "-")] = value
    return result


def zd_env(**inputs: str) -> dict[str, str]:
    base = env(flow="zero-downtime", team_id="7", plan_id="8")
    base.pop("INPUT_WORKSPACE-ID")
    base.update(
        GITHUB_REPOSITORY="acme/shop",
        GITHUB_SHA="0123456789abcdef0123456789abcdef01234567",
        GITHUB_REF_NAME="main",
        GITHUB_SERVER_URL="https://github.com",
    )
    base.update(env(**inputs))
    base.pop("INPUT_WORKSPACE-ID")
    base["INPUT_API-TOKEN"] = TOKEN
    return base


def test_defaults_for_the_simple_flow() -> None:
    config = load_config(env())
    assert config.flow == "simple"
    assert config.api_url == DEFAULT_API_URL
    assert config.workspace_id == 42
    assert (config.prepare, config.test) == (True, False)
    assert (config.stage_timeout, config.workspace_timeout) == (1800, 600)
    assert (config.remote, config.branch, config.profile) == ("origin", "", "")
    assert TOKEN not in repr(config)


def test_inputs_are_read_with_hyphens_kept() -> None:
    config = load_config(
        {
            "INPUT_API-TOKEN": TOKEN,
            "INPUT_WORKSPACE-ID": "9",
            "INPUT_STAGE-TIMEOUT": "90s",
            "INPUT_WORKSPACE-TIMEOUT": "1h",
            "INPUT_PROFILE": "production",
            "INPUT_BRANCH": "release/1.2",
            "INPUT_TEST": "TRUE",
        }
    )
    assert (config.workspace_id, config.stage_timeout, config.workspace_timeout) == (9, 90, 3600)
    assert (config.profile, config.branch, config.test) == ("production", "release/1.2", True)


def test_zero_downtime_defaults_come_from_the_github_context() -> None:
    config = load_config(zd_env())
    assert config.workspace_name == "shop-0123456"
    assert config.git_url == "https://github.com/acme/shop.git"
    assert config.branch == "main"
    assert (config.team_id, config.plan_id, config.replicas) == (7, 8, 1)
    assert (config.domain, config.domain_path, config.domain_url) == ("", "/", "")
    assert (config.delete_previous, config.cleanup_on_failure, config.private_repo) == (
        False,
        True,
        False,
    )


def test_env_values_are_plain_and_secret_env_values_are_secrets() -> None:
    config = load_config(
        zd_env(env="PORT=3000\nNODE_ENV=production", secret_env="A=one-secret\nB=two-secret")
    )
    assert [(v.name, v.value) for v in config.env] == [
        ("PORT", "3000"),
        ("NODE_ENV", "production"),
        ("A", "one-secret"),
        ("B", "two-secret"),
    ]
    assert set(config.secrets) == {TOKEN, "one-secret", "two-secret"}


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        # Issue 17: no part of a line is shown, not even the name (it may be a secret).
        (
            {"env": "A=1", "secret_env": "B=1\nA=2"},
            "input 'secret-env' is 'line 2': it sets a variable that line 1 of the env input",
        ),
        ({"env": "CODESPHERE_RELEASE=x"}, "input 'env' is 'line 1: CODESPHERE_RELEASE'"),
        ({"secret_env": "CODESPHERE_RELEASE=x"}, "the action's own mark"),
    ],
)
def test_env_names_must_not_clash(inputs: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(zd_env(**inputs))


@pytest.mark.parametrize(
    ("inputs", "name", "shown"),
    [
        ({"api_token": ""}, "api-token", "empty"),
        ({"api_token": "   "}, "api-token", "empty"),
        ({"flow": "blue-green"}, "flow", "'blue-green'"),
        ({"workspace_id": "12a"}, "workspace-id", "'12a'"),
        ({"workspace_id": "-3"}, "workspace-id", "'-3'"),
        ({"workspace_id": ""}, "workspace-id", "empty"),
        ({"api_url": "http://codesphere.com/api"}, "api-url", "'http://codesphere.com/api'"),
        ({"api_url": "ftp://x"}, "api-url", "'ftp://x'"),
        ({"api_url": "codesphere.com"}, "api-url", "'codesphere.com'"),
        ({"stage_timeout": "soon"}, "stage-timeout", "'soon'"),
        ({"stage_timeout": "0"}, "stage-timeout", "'0'"),
        ({"stage_timeout": "-5m"}, "stage-timeout", "'-5m'"),
        ({"workspace_timeout": "7h"}, "workspace-timeout", "'7h'"),
        ({"prepare": "yes"}, "prepare", "'yes'"),
        ({"test": "1"}, "test", "'1'"),
        ({"profile": "prod/../x"}, "profile", "'prod/../x'"),
        ({"profile": "a b"}, "profile", "'a b'"),
        ({"remote": "orig in"}, "remote", "'orig in'"),
        ({"branch": "feat..x"}, "branch", "'feat..x'"),
        ({"branch": "-rm"}, "branch", "'-rm'"),
    ],
)
def test_bad_inputs_name_the_input_and_value(inputs: dict[str, str], name: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env(**inputs))
    assert caught.value.input_name == name
    assert f"input '{name}' is {shown}" in str(caught.value)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("inputs", "name"),
    [
        ({"team_id": ""}, "team-id"),
        ({"team_id": "x"}, "team-id"),
        ({"plan_id": ""}, "plan-id"),
        ({"replicas": "0"}, "replicas"),
        ({"replicas": "two"}, "replicas"),
        ({"domain": "not a domain"}, "domain"),
        ({"domain": "-bad.example.com"}, "domain"),
        ({"domain": "localhost"}, "domain"),
        ({"domain_path": "api"}, "domain-path"),
        ({"env": "1BAD=x"}, "env"),
        ({"env": "NOEQUALS"}, "env"),
        ({"env": "A=1\nA=2"}, "env"),
        ({"private_repo": "maybe"}, "private-repo"),
        ({"delete_previous": "sure"}, "delete-previous"),
        ({"cleanup_on_failure": "no"}, "cleanup-on-failure"),
        ({"workspace_name": "has space"}, "workspace-name"),
        ({"git_url": "not-a-url"}, "git-url"),
    ],
)
def test_bad_zero_downtime_inputs(inputs: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(zd_env(**inputs))
    assert caught.value.input_name == name


def test_env_errors_never_show_values() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env("env", "GOOD=fine\nbad name=hunter2-secret")
    assert "hunter2-secret" not in str(caught.value)
    assert "line 2" in str(caught.value)


def test_env_is_dotenv_style() -> None:
    parsed = parse_env(
        "env",
        "# a comment\n\nexport A=1\nB = 'two words'\nC=\"x=y\"\nD=\n",
    )
    assert [(v.name, v.value) for v in parsed] == [
        ("A", "1"),
        ("B", "two words"),
        ("C", "x=y"),
        ("D", ""),
    ]


def test_env_takes_multi_line_values_in_the_runners_heredoc_form() -> None:
    parsed = parse_env(
        "secret-env",
        "A=1\nKEY<<PEM_1\n-----BEGIN-----\n  indented\n\n-----END-----\nPEM_1\n"
        "export EMPTY<<EOF\nEOF\nB='x'\n",
    )
    assert [(v.name, v.value) for v in parsed] == [
        ("A", "1"),
        ("KEY", "-----BEGIN-----\n  indented\n\n-----END-----"),
        ("EMPTY", ""),
        ("B", "x"),
    ]


SECRET = "hunter2-Pa55"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        # issue 17 item 1: a YAML-style line; its "name" holds the password
        (f"DATABASE_URL: postgres://u:{SECRET}@db/x?ssl=1", "line 1", "YAML style"),
        (f"DATABASE_URL: {SECRET}", "line 1", "YAML style"),
        (f"GOOD=1\n{SECRET}", "line 2", "NAME<<EOF"),
        # item 2: the tail of a wrapped value, and an indented continuation
        (f"KEY=abc\n{SECRET}==", "line 2", "nothing but '='"),
        ("KEY=abc\ns3cr3tPassw0rd=", "line 2", "nothing but '='"),
        (f"KEY=abc\n   {SECRET}=x", "line 2", "rest of line 1's value"),
        # item 3: a quoted value that spans lines, a heredoc never closed
        (f'KEY="{SECRET}\nmore"', "line 1", "NAME<<EOF"),
        (f"KEY='{SECRET}", "line 1", "NAME<<EOF"),
        (f"A=1\nKEY<<EOF\n{SECRET}\nEO", "line 2", "never closed"),
        # the same name twice, or not a name
        (f"{SECRET}=1\n{SECRET}=2", "line 2", "line 1 sets already"),
        (f"{SECRET}.x y=1", "line 1", "expected NAME=value"),
    ],
)
@pytest.mark.parametrize("name", ["env", "secret-env"])
def test_env_errors_name_the_line_and_show_no_part_of_it(
    name: str, text: str, line: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env(name, text)
    message = str(caught.value)
    assert message.startswith(f"input '{name}' is '{line}': ")
    assert says in message
    for part in (SECRET, "hunter2", "DATABASE_URL", "KEY", "postgres"):
        assert part not in message


def test_api_url_allows_http_only_on_loopback() -> None:
    assert parse_api_url("api-url", "http://127.0.0.1:8080/api/") == "http://127.0.0.1:8080/api"
    assert parse_api_url("api-url", "http://localhost:1/api") == "http://localhost:1/api"
    assert parse_api_url("api-url", "https://cs.example.org/api") == "https://cs.example.org/api"
    with pytest.raises(ConfigError, match="without user:password"):
        parse_api_url("api-url", "https://me:secret@codesphere.com/api")


def test_domain_is_normalised() -> None:
    assert parse_domain("domain", "App.Example.COM.") == "app.example.com"


def test_an_internationalised_domain_becomes_its_ascii_form_by_idna_2008() -> None:
    assert parse_domain("domain", "Bücher.example.com") == "xn--bcher-kva.example.com"
    # IDNA 2008, not the standard library's IDNA 2003 (which gives "strasse.de")
    assert parse_domain("domain", "straße.de") == "xn--strae-oqa.de"
    with pytest.raises(ConfigError, match="xn-- form"):
        parse_domain("domain", "bad‍.example.com")


@pytest.mark.parametrize(
    ("given", "path"), [("/", "/"), ("/api/", "/api"), ("/api", "/api"), ("/A/b/", "/A/b")]
)
def test_domain_path_ignores_a_trailing_slash(given: str, path: str) -> None:
    assert parse_domain_path("domain-path", given) == path


def test_rollback_takes_the_previous_workspace_id_output_verbatim() -> None:
    base = zd_env(flow="rollback", domain="shop.example.com")
    config = load_config({**base, "INPUT_WORKSPACE-ID": "12,34"})
    assert (config.workspace_id, config.workspace_ids) == (12, (12, 34))
    assert load_config({**base, "INPUT_WORKSPACE-ID": " 12, 34 "}).workspace_ids == (12, 34)
    assert load_config({**base, "INPUT_WORKSPACE-ID": "12"}).workspace_ids == (12,)
    for bad in ("12,,34", "12,12", "12,x"):
        with pytest.raises(ConfigError, match="input 'workspace-id'"):
            load_config({**base, "INPUT_WORKSPACE-ID": bad})
    promote = {**base, "INPUT_FLOW": "promote", "INPUT_WORKSPACE-ID": "12,34"}
    with pytest.raises(ConfigError, match="exactly one id"):
        load_config(promote)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("1.5m", 90)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration("stage-timeout", text) == seconds


# -- property-based tests over the parsers --------------------------------------


@given(st.integers(min_value=1, max_value=21600), st.sampled_from(["", "s"]))
def test_any_whole_number_of_seconds_parses(number: int, unit: str) -> None:
    assert parse_duration("t", f"{number}{unit}") == number


@given(st.text())
def test_duration_parser_accepts_or_names_the_input(text: str) -> None:
    try:
        seconds = parse_duration("stage-timeout", text)
    except ConfigError as exc:
        assert exc.input_name == "stage-timeout"
    else:
        assert 0 < seconds <= 6 * 3600


@given(st.text())
def test_bool_parser_is_strict(text: str) -> None:
    try:
        value = parse_bool("test", text)
    except ConfigError:
        assert text.strip().lower() not in ("true", "false")
    else:
        assert value == (text.strip().lower() == "true")


@given(st.text())
def test_domain_parser_never_returns_garbage(text: str) -> None:
    try:
        domain = parse_domain("domain", text)
    except ConfigError:
        return
    assert all(ch.isascii() and (ch.isalnum() or ch in ".-") for ch in domain)
    assert "." in domain and domain == domain.lower()


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(
            str.strip
        ),
        max_size=5,
    )
)
def test_env_round_trips(variables: dict[str, str]) -> None:
    """Every value round-trips, except what issue 17 refuses: a value of nothing
    but '=', or a mixed-case alphanumeric "name" with an empty value (the tail of
    a wrapped base64 value), and a quote that does not close on its line; those
    are refused naming the line."""
    text = "\n".join(f"{k}={v}" for k, v in variables.items())

    def refused(k: str, v: str) -> bool:
        unclosed = v[:1] in ("'", '"') and (len(v) < 2 or v[-1] != v[0])
        base64_tail = not v and re.fullmatch(r"(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[A-Za-z\d]{8,}", k)
        return unclosed or (bool(v) and set(v) == {"="}) or bool(base64_tail)

    bad = [n for n, (k, v) in enumerate(variables.items(), start=1) if refused(k, v)]
    if bad:
        with pytest.raises(ConfigError, match=f"is 'line {bad[0]}'"):
            parse_env("env", text)
        return
    parsed = {var.name: var.value for var in parse_env("env", text)}
    expected = {
        k: (v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" else v)
        for k, v in variables.items()
    }
    assert parsed == expected


@given(st.text())
def test_api_url_parser_only_returns_safe_urls(text: str) -> None:
    try:
        url = parse_api_url("api-url", text)
    except ConfigError as exc:
        assert exc.input_name == "api-url"
    else:
        assert url.startswith(("https://", "http://"))


@pytest.mark.parametrize("name", ["env", "secret_env"])
def test_a_line_without_equals_sign_is_never_echoed(name: str) -> None:
    secret = "sk_live_51Habcdefgh"
    with pytest.raises(ConfigError) as caught:
        load_config(zd_env(**{name: f"GOOD=1\nSTRIPE_KEY: {secret}"}))
    assert secret not in str(caught.value)
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "shop.example.com=localhost:1@attacker.example",
        "shop.example.com=127.0.0.1:80@10.0.0.1",
        "shop.example.com=10.0.0.1:80",
        "shop.example.com=attacker.example:443",
        "shop.example.com=127.0.0.1",
    ],
)
def test_the_resolve_seam_only_ever_points_at_a_loopback_port(value: str) -> None:
    with pytest.raises(ContextError, match="only ever points at loopback"):
        load_config({**zd_env(), "CODESPHERE_RELEASE_RESOLVE": value})


def test_the_credentials_of_a_git_url_are_secrets() -> None:
    """A git-url with ``user:token@`` is masked like the tokens (it is sent to
    Codesphere as it is, and may show in an error about the branch)."""
    config = load_config(
        env(
            flow="zero-downtime",
            team_id="1",
            plan_id="2",
            git_url="https://x-access:ghp_s3cr3t0123@github.com/acme/shop.git",
        )
        | {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "a" * 40, "GITHUB_REF_NAME": "main"}
    )
    assert "ghp_s3cr3t0123" in config.secrets and "x-access" in config.secrets


def test_dry_run_is_off_by_default_and_a_strict_boolean() -> None:
    assert load_config(env()).dry_run is False
    assert load_config(env(dry_run="TRUE")).dry_run is True
    with pytest.raises(ConfigError, match="input 'dry-run' is 'yes': expected 'true' or 'false'"):
        load_config(env(dry_run="yes"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 7 * 86400.0), ("36h", 36 * 3600.0), ("1d12h", 36 * 3600.0), ("90m", 5400.0)],
)
def test_max_age_takes_days(text: str, seconds: float) -> None:
    environ = {**env(flow="prune", team_id="7"), "GITHUB_REPOSITORY": "acme/shop"}
    environ["INPUT_MAX-AGE"] = text
    assert load_config(environ).max_age == seconds


@pytest.mark.parametrize("text", ["0d", "a week", "-1d", "3651d", "7 d"])
def test_max_age_refuses_what_is_no_age(text: str) -> None:
    environ = {**env(flow="prune", team_id="7"), "GITHUB_REPOSITORY": "acme/shop"}
    environ["INPUT_MAX-AGE"] = text
    with pytest.raises(ConfigError, match=f"input 'max-age' is '{re.escape(text)}'"):
        load_config(environ)


def test_keep_is_a_whole_number_from_zero() -> None:
    environ = {**env(flow="prune", team_id="7"), "GITHUB_REPOSITORY": "acme/shop"}
    assert (load_config(environ).keep, load_config(environ).max_age) == (1, 7 * 86400.0)
    assert load_config({**environ, "INPUT_KEEP": "0"}).keep == 0
    with pytest.raises(ConfigError, match="input 'keep' is '-1': expected a whole number"):
        load_config({**environ, "INPUT_KEEP": "-1"})


def test_prune_needs_the_team_and_the_repository_it_prunes_for() -> None:
    with pytest.raises(ConfigError, match="input 'team-id' is empty"):
        load_config({**env(flow="prune"), "GITHUB_REPOSITORY": "acme/shop"})
    with pytest.raises(ContextError, match="GITHUB_REPOSITORY, and that is not set"):
        load_config(env(flow="prune", team_id="7"))


# -- the create settings and secret-store (issue 20) ----------------------------------
def test_create_settings_are_read_typed_and_default_to_unset() -> None:
    assert load_config(zd_env()).create == CreateSettings()
    config = load_config(
        zd_env(
            base_image="ubuntu-24.04",
            clone_depth=" 3 ",
            restricted="True",
            shared_vault_name="prod.secrets_1",
            storage_mib="20480",
            vpn_config="Office VPN (Berlin)",
            secret_store="VAULT",
        )
    )
    assert config.create == CreateSettings(
        base_image="ubuntu-24.04",
        clone_depth=3,
        restricted=True,
        shared_vault_name="prod.secrets_1",
        storage_mib=20480,
        vpn_config="Office VPN (Berlin)",
        to_vault=True,
    )
    assert config.ignored == ()  # zero-downtime reads every one of them
    assert load_config(zd_env(restricted="false")).create.restricted is False


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("base_image", "ubuntu 24.04", "expected a base image id such as 'ubuntu-24.04'"),
        ("base_image", "-x", "expected a base image id"),
        ("clone_depth", "0", "expected a whole number of at least 1, such as '1'"),
        ("clone_depth", "1.5", "expected a whole number of at least 1"),
        ("clone_depth", "99999999999", "expected a whole number of at least 1"),
        ("clone_depth", "\u0661", "expected a whole number of at least 1"),  # a non-ASCII digit
        ("restricted", "on", "expected 'true' or 'false'"),
        ("shared_vault_name", "team/vault", "expected the name of a shared vault of the team"),
        ("storage_mib", "20 GiB", "expected a whole number of at least 1, such as '20480'"),
        ("vpn_config", "a\tb", "without control characters"),
        ("secret_store", "file", "expected one of env, vault"),
    ],
)
def test_bad_create_settings_name_the_input_and_the_value(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(zd_env(**{name: value}))
    assert caught.value.input_name == name.replace("_", "-")
    assert f"'{value}'" in str(caught.value) and expected in str(caught.value)


def test_a_long_vpn_config_is_refused_without_quoting_all_of_it() -> None:
    with pytest.raises(ConfigError, match="at most 255 characters") as caught:
        load_config(zd_env(vpn_config="v" * 400))
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("flow", ["simple", "teardown", "promote", "rollback"])
def test_flows_that_create_nothing_list_the_settings_they_ignore(flow: str) -> None:
    inputs = {"flow": flow, "team_id": "7", "domain": "a.example.com", "workspace_name": "x"}
    config = load_config(
        env(**inputs, storage_mib="10", restricted="false", secret_store="env", base_image="")
    )
    # env is secret-store's default; the other inputs given are the flow's own or not
    assert created_only(config.ignored) == ["restricted", "storage-mib"]
    assert created_only(load_config(env(**inputs, secret_store="vault")).ignored) == [
        "secret-store"
    ]
    assert created_only(load_config(env(**inputs)).ignored) == []


CREATE_SETTINGS = (
    "base-image", "clone-depth", "restricted", "shared-vault-name", "storage-mib", "vpn-config",
    "secret-store",
)  # fmt: skip


def created_only(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in CREATE_SETTINGS]


def test_the_create_body_sends_a_setting_only_when_set() -> None:
    body = CreateWorkspace(team_id=1, name="n", plan_id=8, is_private_repo=False, replicas=1)
    assert body.to_json() == {
        "teamId": 1,
        "name": "n",
        "planId": 8,
        "isPrivateRepo": False,
        "replicas": 1,
    }
    full = CreateWorkspace(
        team_id=1, name="n", plan_id=8, is_private_repo=False, replicas=1,
        base_image="ubuntu-24.04", clone_depth=1, restricted=False, shared_vault_name="v",
        storage_mib=5, vpn_config="vpn",
    ).to_json()  # fmt: skip
    assert {k: full[k] for k in full if k not in ("teamId", "name", "planId")} == {
        "isPrivateRepo": False,
        "replicas": 1,
        "baseImage": "ubuntu-24.04",
        "cloneDepth": 1,
        "restricted": False,  # false is set, so it is sent
        "sharedVaultName": "v",
        "storageMib": 5,
        "vpnConfig": "vpn",
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "failure"), ("", "failure"), ("failure", "failure"), (" Always ", "always")],
)
def test_show_logs_is_failure_by_default_or_always(given: str | None, expected: str) -> None:
    inputs = {} if given is None else {"show_logs": given}
    assert load_config(env(**inputs)).show_logs == expected


@pytest.mark.parametrize("value", ["verbose", "true", "all", "failures"])
def test_another_show_logs_value_names_the_input_and_the_two_it_takes(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env(show_logs=value))
    assert caught.value.input_name == "show-logs"
    assert str(caught.value) == f"input 'show-logs' is '{value}': expected one of failure, always"
