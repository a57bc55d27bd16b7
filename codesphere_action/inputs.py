"""Action inputs -> typed values.

Every input arrives as a string in ``INPUT_<NAME>``; the parsers here turn one
into the value the action uses, or raise ``ConfigError`` naming the input,
quoting the value (never a token's or a secret's) and saying what is accepted.
Standard library only, so a bad input fails in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .addresses import is_loopback
from .errors import ConfigError

DEFAULT_API_URL = "https://cloud.codesphere.com/api"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
# The spec's pattern for a CI profile ({profile} of .../start/{profile}), ASCII only.
PROFILE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

REMOTE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")

DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[hms]?)+$")

UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}

MAX_DURATION = 6 * 3600.0  # a GitHub job cannot run longer

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

MAX_ENVIRONMENT = 255  # GitHub's limit for an environment name

SHOW_LOGS = ("failure", "always")  # the values of show-logs, the default first

# A base image's id as GET /metadata/workspace-base-images lists them ("ubuntu-24.04").
BASE_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")

# A shared vault's name: a path segment of /vault/teams/{teamId}/shared/{vaultName}.
VAULT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

MAX_INT32 = 2**31 - 1  # the largest integer a create field surely takes
MAX_TEXT = 255  # of a free-text setting (a VPN config's name)


def input_env_name(name: str) -> str:
    """The variable the runner sets for an input: upper case, spaces to ``_``, hyphens kept."""
    return "INPUT_" + name.replace(" ", "_").upper()


class Inputs:
    """Reads inputs the way the runner passes them, remembering what was read."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str:
        return self.environ.get(input_env_name(name), "")

    def get(self, name: str, default: str = "") -> str:
        value = self.raw(name).strip()
        return value if value else default

    def given(self, name: str) -> bool:
        """Whether the runner passed the input at all (it passes every declared
        input, with its default; an undeclared one only when ``with:`` has it)."""
        return input_env_name(name) in self.environ


# Inputs renamed before the first release (no alias): the old name -> the new, and why.
RENAMED = {
    "environment": (
        "deployment-environment",
        "a job's own `environment:` key is another thing, and the two were easy to mix up",
    ),
}


def check_renamed(inputs: Inputs) -> None:
    """ConfigError for an input under its old name, even empty: the runner passes
    an undeclared input only when the step's ``with:`` names it."""
    for old, (new, why) in RENAMED.items():
        if inputs.given(old):
            value = inputs.raw(old).strip()
            shown = value if len(value) <= 60 else value[:40] + "..."
            raise ConfigError(
                old,
                shown,
                f"it was renamed to '{new}' ({why}): write `{new}:` instead of `{old}:` in "
                "the step's `with:`",
            )


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigError(name, value, "expected 'true' or 'false'")


def parse_duration(name: str, value: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``1h``, ``1h30m`` into seconds (> 0, <= 6 h)."""
    text = value.strip().lower()
    if not DURATION.match(text):
        raise ConfigError(
            name, value, "expected a duration such as '90' (seconds), '90s', '15m', '1h' or '1h30m'"
        )
    seconds = sum(
        float(number) * UNIT_SECONDS[unit] for number, unit in DURATION_PART.findall(text)
    )
    if seconds <= 0:
        raise ConfigError(name, value, "expected a duration greater than zero")
    if seconds > MAX_DURATION:
        raise ConfigError(name, value, "expected at most 6h (the longest a GitHub job runs)")
    return seconds


def parse_bake_time(name: str, value: str) -> float:
    """``0`` (no bake), or a duration as ``parse_duration`` takes it."""
    if re.fullmatch(r"0+(?:\.0*)?[hms]?", value.strip().lower()):
        return 0.0
    try:
        return parse_duration(name, value)
    except ConfigError:
        raise ConfigError(
            name, value, "expected 0 (no bake) or a duration such as '90s', '10m' or '1h'"
        ) from None


AGE = re.compile(r"^(?:\d+(?:\.\d+)?[dhms]?)+$")
AGE_UNITS = {"d": 86400.0, **UNIT_SECONDS}
MAX_AGE = 3650 * 86400.0  # ten years: anything longer is a typo


def parse_age(name: str, value: str) -> float:
    """An age such as ``7d``, ``36h``, ``1d12h`` or ``90m`` (seconds without a unit),
    in seconds: more than zero, at most ten years."""
    text = value.strip().lower()
    expected = "expected an age such as '7d', '36h', '1d12h' or '90m'"
    if not AGE.match(text):
        raise ConfigError(name, value, expected)
    seconds = sum(
        float(number) * AGE_UNITS[unit]
        for number, unit in re.findall(r"(\d+(?:\.\d+)?)([dhms]?)", text)
    )
    if not 0 < seconds <= MAX_AGE:
        raise ConfigError(name, value, expected + " (more than zero, at most 3650d)")
    return seconds


def parse_count(name: str, value: str) -> int:
    """A whole number, zero included (``keep: 0``)."""
    if not value.isascii() or not value.isdigit() or int(value) > 1000:
        raise ConfigError(name, value, "expected a whole number from 0 to 1000, such as '1'")
    return int(value)


def parse_id(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ConfigError(name, value, "expected a numeric id such as '12345'")
    return int(value)


def parse_positive_int(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ConfigError(name, value, "expected a whole number of at least 1")
    return int(value)


def parse_size(name: str, value: str, example: str) -> int:
    """A whole number from 1 up to 2**31 - 1 (the spec's ``minimum: 1`` integers)."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_INT32:
        raise ConfigError(name, value, f"expected a whole number of at least 1, such as {example}")
    return int(text)


def parse_pattern(name: str, value: str, pattern: re.Pattern[str], expected: str) -> str:
    if not pattern.match(value):
        raise ConfigError(name, value, expected)
    return value


def parse_text(name: str, value: str) -> str:
    """A name in free text (a VPN config's): printable, at most ``MAX_TEXT`` characters."""
    if len(value) > MAX_TEXT:
        raise ConfigError(
            name, value[:40] + "...", f"expected a name of at most {MAX_TEXT} characters"
        )
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ConfigError(name, value, "expected a name without control characters")
    return value


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise ConfigError(name, value, "expected one of " + ", ".join(choices))
    return lowered


def parse_api_url(name: str, value: str) -> str:
    expected = (
        "expected an https URL such as 'https://cloud.codesphere.com/api' "
        "(http only for loopback hosts, for local testing)"
    )
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(name, value, expected) from None
    if parts.username or parts.password:
        raise ConfigError(
            name, "<redacted: contains credentials>", "expected a URL without user:password@"
        )
    if not host or parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ConfigError(name, value, expected)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return value.rstrip("/")
    raise ConfigError(name, value, expected)


def parse_domain(name: str, value: str) -> str:
    """A domain name, lower case, in ASCII: an internationalised one (IDN) in its
    ``xn--`` form by IDNA 2008 (UTS #46), as DNS and Codesphere know it."""
    domain = value.strip().rstrip(".")
    if not domain.isascii():
        domain = _idna(name, value, domain)
    domain = domain.lower()
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or not all(DOMAIN_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ConfigError(name, value, "expected a domain name such as 'app.example.com'")
    return domain


def _idna(name: str, value: str, domain: str) -> str:
    # The idna package (a dependency of requests, imported only for an IDN):
    # IDNA 2008 as registries and browsers use it. The standard library's codec
    # is IDNA 2003, which turns "straße.de" into another domain, "strasse.de".
    import idna  # noqa: PLC0415

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except idna.IDNAError:
        raise ConfigError(
            name,
            value,
            "expected a domain name such as 'app.example.com' or 'bücher.example.com' "
            "(internationalised names are converted to their xn-- form; that form works too)",
        ) from None


def normalise_path(path: str) -> str:
    """A domain path the way Codesphere's proxy matches it: a trailing slash does
    not count (``/api/`` is ``/api``); ``/`` stays ``/``. Letter case counts."""
    return path.rstrip("/") or "/"


def parse_domain_path(name: str, value: str) -> str:
    if not value.startswith("/") or any(c.isspace() or c in "?#" for c in value) or "//" in value:
        raise ConfigError(name, value, "expected a path starting with '/', such as '/' or '/api'")
    return normalise_path(value)


def parse_workspace_ids(name: str, value: str, flow: str, *, many: bool) -> tuple[int, ...]:
    """One id; with ``many`` (rollback) a comma-separated list (the
    previous-workspace-id output of a release, verbatim: the path goes back to
    all of them)."""
    if not many or "," not in value:
        if "," in value:
            raise ConfigError(name, value, f"the {flow} flow takes exactly one id")
        return (parse_id(name, value),)
    parts = [part.strip() for part in value.split(",")]
    if not all(parts):
        raise ConfigError(name, value, "expected ids separated by commas, such as '12,34'")
    ids = tuple(parse_id(name, part) for part in parts)
    if len(set(ids)) != len(ids):
        raise ConfigError(name, value, "expected each id once")
    return ids


def parse_http_path(name: str, value: str) -> str:
    """A URL path (and query) to GET on the workspace, e.g. ``/healthz``."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "#" in value
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise ConfigError(name, value, "expected a path starting with '/', such as '/healthz'")
    return value


def parse_statuses(name: str, value: str) -> tuple[tuple[int, int], ...]:
    """``200-399``, ``200,204``, ``200-299, 301``: HTTP statuses and inclusive ranges."""
    expected = "expected HTTP statuses and ranges such as '200-399' or '200,204,301-302'"
    ranges = []
    for part in value.split(","):
        low, dash, high = part.strip().partition("-")
        high = high if dash else low
        if not (low.strip().isdigit() and high.strip().isdigit()):
            raise ConfigError(name, value, expected)
        first, last = int(low), int(high)
        if not (100 <= first <= last <= 599):
            raise ConfigError(name, value, expected + " (100 to 599, low before high)")
        ranges.append((first, last))
    return tuple(ranges)


def parse_branch(name: str, value: str) -> str:
    # git check-ref-format's rules, the ones that matter for a URL path segment.
    bad = (
        value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or any(c.isspace() or ord(c) < 32 or c in "~^:?*[\\" for c in value)
    )
    if bad:
        raise ConfigError(name, value, "expected a git branch name such as 'main' or 'release/1.2'")
    return value


def parse_git_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme in ("https", "http", "ssh") and parts.hostname:
        return value
    if re.match(r"^[\w.-]+@[\w.-]+:[\w./~-]+$", value):  # scp-like git@host:owner/repo.git
        return value
    raise ConfigError(
        name, value, "expected a repository URL such as 'https://github.com/owner/repo.git'"
    )


def parse_environment(name: str, value: str) -> str:
    if len(value) > MAX_ENVIRONMENT or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ConfigError(
            name, value, "expected an environment name of at most 255 printable characters"
        )
    return value


def default_workspace_name(repository: str, sha: str) -> str:
    """``<repository name>-<first 7 characters of the commit>``, valid for any
    repository name (see ``_name_start``)."""
    suffix = f"-{sha[:7]}"
    return f"{_name_start(repository, 63 - len(suffix))}{suffix}" if repository and sha else ""


def default_app_name(repository: str) -> str:
    """The app a release is of when ``workspace-name`` is not set: the repository's
    name as ``default_workspace_name`` starts with it ("" without a repository)."""
    return _name_start(repository, 63 - len("-0000000")) if repository else ""


def preview_workspace_name(repository: str, number: int) -> str:
    """``<repository name>-pr-<number>``, the repository name shortened to fit 63
    characters and made valid (see ``_name_start``)."""
    suffix = f"-pr-{number}"
    return f"{_name_start(repository, 63 - len(suffix))}{suffix}" if repository else ""


def _name_start(repository: str, room: int) -> str:
    """The repository's name as the start of a workspace name, at most ``room``
    characters: a character the name pattern refuses becomes '-', and one it may
    not start with is dropped from the front (``.github`` -> ``github``,
    ``_internal`` -> ``internal``); ``workspace`` when nothing is left. A name
    that was valid stays as it was (previews made before are found again)."""
    repo = re.sub(r"[^A-Za-z0-9_.-]", "-", repository.rsplit("/", 1)[-1])
    repo = re.sub(r"^[^A-Za-z0-9]+", "", repo)
    return (repo or "workspace")[:room]
