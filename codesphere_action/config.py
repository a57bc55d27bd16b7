"""Action inputs and GitHub context -> one frozen, validated ``Config``.

Everything here runs before the first request and imports nothing but the
standard library, so a bad input fails in milliseconds. Every error names the
input, quotes the value (never the token's) and says what is accepted.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError, ContextError, Skipped
from .models import EnvVar

DEFAULT_API_URL = "https://codesphere.com/api"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
FLOWS = ("simple", "zero-downtime", "preview", "teardown", "promote", "rollback")
# Flows that point the domain at an existing workspace (promote.py).
SWITCHING_FLOWS = ("promote", "rollback")
# Flows that create a workspace from the repository.
CREATING_FLOWS = ("zero-downtime", "preview")
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")

# The spec's pattern for environment variable names.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
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
# The variable the action sets on every workspace it creates (ownership.py).
MARK_NAME = "CODESPHERE_RELEASE"


def input_env_name(name: str) -> str:
    """The variable the runner sets for an input: upper case, spaces to ``_``, hyphens kept."""
    return "INPUT_" + name.replace(" ", "_").upper()


@dataclass(frozen=True)
class PullRequest:
    """The pull request a ``pull_request`` / ``pull_request_target`` event is about."""

    number: int
    head_ref: str
    head_sha: str
    head_repository: str = ""  # owner/name of the head branch's repository, "" if unknown
    action: str = ""  # the event's action: opened, synchronize, reopened, closed, ...
    state: str = ""  # pull_request.state when the event was sent: open or closed

    @property
    def closed(self) -> bool:
        """Whether the event says the pull request is closed (its action or its state)."""
        return self.action == "closed" or self.state == "closed"


@dataclass(frozen=True)
class Config:
    """One release, fully validated. Durations are seconds."""

    api_token: str
    api_url: str
    flow: str
    profile: str
    prepare: bool
    test: bool
    stage_timeout: float
    workspace_timeout: float
    workspace_id: int | None
    remote: str
    branch: str
    # rollback: every id of the workspace-id input (the previous-workspace-id output
    # of a release, verbatim); the other flows: workspace_id alone, or none.
    workspace_ids: tuple[int, ...] = ()
    team_id: int | None = None
    plan_id: int | None = None
    git_url: str = ""
    private_repo: bool = False
    replicas: int = 1
    workspace_name: str = ""
    env: tuple[EnvVar, ...] = ()  # env and secret-env together, in that order
    # ASCII (an IDN's xn-- form), lower case; the flows switch to the API's spelling.
    domain: str = ""
    domain_input: str = ""  # the input as given (an IDN's Unicode form), for the log
    domain_path: str = "/"  # normalised: no trailing slash (but "/")
    delete_previous: bool = False
    cleanup_on_failure: bool = True
    switch: bool = True  # zero-downtime: move the domain (false: stage the release only)
    # Health check: empty path is off. Statuses are inclusive ranges.
    health_path: str = ""
    health_statuses: tuple[tuple[int, int], ...] = ((200, 399),)
    health_timeout: float = 300.0
    health_domain: bool = True  # also check the domain after the switch; roll back if not
    require_commit: bool = False
    # Test seam (CODESPHERE_RELEASE_RESOLVE): host -> loopback host:port, so the
    # tests can serve a custom domain locally. Loopback targets only.
    resolve: tuple[tuple[str, str], ...] = ()
    # GitHub Deployments: off while github_token is empty.
    github_token: str = field(default="", repr=False)
    environment: str = ""
    github_api_url: str = DEFAULT_GITHUB_API_URL
    # GitHub context, for names, links and the summary.
    repository: str = ""
    sha: str = ""
    ref_name: str = ""
    server_url: str = "https://github.com"
    event_name: str = ""
    pull_request: PullRequest | None = None
    run_url: str = ""
    run_id: str = ""  # GITHUB_RUN_ID.GITHUB_RUN_ATTEMPT: this run, in the mark (ownership.py)
    debug: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # the token must never reach a log through a repr
        return f"Config(flow={self.flow!r}, api_url={self.api_url!r}, ...)"

    @property
    def domain_url(self) -> str:
        return f"https://{self.domain}{self.domain_path}" if self.domain else ""

    @property
    def expected_commit(self) -> str:
        """The commit this run releases, when it knows it ("" otherwise): the pull
        request's head for a preview; GITHUB_SHA for promote, with require-commit
        (the user asked for it, whatever the branch), and otherwise when the
        branch released is the one the run was triggered on."""
        if self.flow == "preview":
            return self.pull_request.head_sha if self.pull_request else ""
        if self.flow in ("rollback", "teardown"):
            return ""  # a rollback goes back to an older commit on purpose
        # The simple flow with no branch pulls whatever branch the workspace is on:
        # only a branch known to be the run's own says which commit to expect,
        # unless require-commit says GITHUB_SHA it must be.
        if (
            self.flow == "promote"
            or self.require_commit
            or (self.branch and self.branch == self.ref_name)
        ):
            return self.sha if COMMIT_SHA.match(self.sha) else ""
        return ""

    @property
    def deployment_ref(self) -> str:
        """The commit a GitHub deployment is for: the pull request's head for a
        preview (GITHUB_SHA is the merge commit there), else GITHUB_SHA."""
        if self.flow == "preview" and self.pull_request is not None:
            return self.pull_request.head_sha
        return self.sha


class _Inputs:
    """Reads inputs the way the runner passes them, remembering what was read."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str:
        return self.environ.get(input_env_name(name), "")

    def get(self, name: str, default: str = "") -> str:
        value = self.raw(name).strip()
        return value if value else default


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


def parse_id(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ConfigError(name, value, "expected a numeric id such as '12345'")
    return int(value)


def parse_positive_int(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ConfigError(name, value, "expected a whole number of at least 1")
    return int(value)


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_api_url(name: str, value: str) -> str:
    expected = (
        "expected an https URL such as 'https://codesphere.com/api' "
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


def parse_workspace_ids(name: str, value: str, flow: str) -> tuple[int, ...]:
    """One id; for rollback a comma-separated list (the previous-workspace-id
    output of a release, verbatim: the path goes back to all of them)."""
    if flow != "rollback" or "," not in value:
        if "," in value and flow == "promote":
            raise ConfigError(name, value, "the promote flow points the path at exactly one id")
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


LOOPBACK_TARGET = re.compile(r"(127(?:\.\d{1,3}){3}|localhost):\d{1,5}")


def parse_resolve(value: str) -> tuple[tuple[str, str], ...]:
    """CODESPHERE_RELEASE_RESOLVE, a test seam: ``domain=127.0.0.1:port,...``. It
    maps the custom domain's health check (never a request with the token) to a
    loopback address; nothing but ``127.x.y.z:port`` or ``localhost:port`` passes."""
    pairs = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        host, _, target = part.partition("=")
        if not host or not LOOPBACK_TARGET.fullmatch(target):
            raise ContextError(
                f"CODESPHERE_RELEASE_RESOLVE has '{part}': expected host=127.0.0.1:<port>; it is "
                "a seam for the tests and only ever points at loopback"
            )
        pairs.append((host.lower(), target))
    return tuple(pairs)


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


# NAME<<DELIM ... DELIM, the runner's own form for a value that spans lines.
HEREDOC = re.compile(r"^(\S+?)<<([A-Za-z0-9_]+)$")
# "NAME: value": the YAML habit, which is not this format.
YAML_STYLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\s*:")
# A "name" of mixed-case letters and digits only, with nothing after its '=':
# the tail of a base64 value wrapped onto a line of its own ("s3cr3tPassw0rd=").
BASE64_RUN = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9]{8,}$")
MULTI_LINE_HINT = "a value that spans lines goes in NAME<<EOF, its lines, then a line EOF"
NOT_SHOWN = "(the line is not shown)"


def parse_env(name: str, value: str) -> tuple[EnvVar, ...]:
    """Dotenv style: ``NAME=value`` per line, ``#`` comments, blank lines, optional
    ``export`` prefix, values optionally in single or double quotes (closed on
    their line); a value that spans lines as ``NAME<<DELIM``, its lines, then a
    line ``DELIM`` (DELIM: letters, digits, ``_``).

    Raises ConfigError naming the line number, never any part of a line: in
    secret-env a "name" may well be a password (a YAML-style line, a value
    wrapped onto a line of its own)."""
    return tuple(var for _, var in env_lines(name, value))


def env_lines(name: str, value: str) -> list[tuple[int, EnvVar]]:
    """``parse_env`` with the line number each variable starts on."""
    lines = value.splitlines()
    result: dict[str, tuple[int, EnvVar]] = {}
    # The NAME=value line right before, as (number, indentation): a line indented
    # deeper right after it is the rest of its value, wrapped.
    before: tuple[int, int] | None = None
    index = 0
    while index < len(lines):
        number, raw_line = index + 1, lines[index]
        index += 1
        line = raw_line.strip()
        if not line or line.startswith("#"):
            before = None
            continue
        indent = len(raw_line) - len(raw_line.lstrip())
        if before is not None and indent > before[1]:
            raise ConfigError(
                name,
                f"line {number}",
                f"it is indented deeper than line {before[0]}, so it looks like the rest of "
                f"line {before[0]}'s value {NOT_SHOWN}. Put each value on its line, or: "
                + MULTI_LINE_HINT,
            )
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, val = line.partition("=")
        heredoc = None if sep else HEREDOC.match(line)
        if heredoc is not None:
            key, delimiter = heredoc.groups()
            val, index = _heredoc_value(name, number, lines, index, delimiter)
            before = None
        elif not sep:
            # The line may be a value (a secret) on a line of its own: never echo it.
            raise ConfigError(name, f"line {number}", _expected_line(line))
        else:
            key, val = key.strip(), _value(name, number, key.strip(), val.strip())
            before = (number, indent)
        _check_name(name, number, line, key, result)
        result[key] = (number, EnvVar(key, val))
    return list(result.values())


def _heredoc_value(
    name: str, number: int, lines: list[str], index: int, delimiter: str
) -> tuple[str, int]:
    """The lines from ``index`` up to the one holding only ``delimiter``, as one
    value; and the index after the delimiter's line."""
    end = index
    while end < len(lines) and lines[end].strip() != delimiter:
        end += 1
    if end == len(lines):
        raise ConfigError(
            name,
            f"line {number}",
            f"the multi-line value it starts is never closed {NOT_SHOWN}: end it with a line "
            "that holds only the delimiter named after '<<'",
        )
    return "\n".join(lines[index:end]), end + 1


def _value(name: str, number: int, key: str, val: str) -> str:
    """The value of a ``NAME=value`` line, quotes taken off; refused when it is
    the tail of a wrapped value or opens a quote it does not close."""
    if (val and set(val) == {"="}) or (not val and BASE64_RUN.match(key)):
        # "s3cr3t==" or "s3cr3tPassw0rd=": the tail of a wrapped base64 value
        # (its padding), not a variable.
        raise ConfigError(
            name,
            f"line {number}",
            "it holds nothing but '=' after its name, so it looks like the end of a value "
            f"wrapped onto a line of its own {NOT_SHOWN}. Put the whole value on one line, "
            "or: " + MULTI_LINE_HINT,
        )
    if val[:1] not in ("'", '"'):
        return val
    if len(val) < 2 or val[-1] != val[0]:
        raise ConfigError(
            name,
            f"line {number}",
            f"its value opens a quote that does not close at the end of the line {NOT_SHOWN}: "
            + MULTI_LINE_HINT,
        )
    return val[1:-1]


def _check_name(
    name: str, number: int, line: str, key: str, seen: dict[str, tuple[int, EnvVar]]
) -> None:
    if not ENV_NAME.match(key):
        raise ConfigError(name, f"line {number}", _expected_line(line))
    if key in seen:
        raise ConfigError(
            name,
            f"line {number}",
            f"it sets the variable line {seen[key][0]} sets already {NOT_SHOWN}: each "
            "variable may appear only once",
        )
    if key == MARK_NAME:  # the action's own name, not the user's: safe to show
        raise ConfigError(
            name, f"line {number}: {key}", "that name is the action's own mark; pick another"
        )


def _expected_line(line: str) -> str:
    """What a line that is no ``NAME=value`` should be (its text is never shown)."""
    expected = (
        "expected NAME=value, with a name of letters, digits, '_', '.', '-', not starting "
        f"with a digit {NOT_SHOWN}"
    )
    if YAML_STYLE.match(line):
        expected += "; 'NAME: value' (YAML style) is not this format: write NAME=value"
    return f"{expected}; {MULTI_LINE_HINT}"


def default_workspace_name(repository: str, sha: str) -> str:
    """``<repository name>-<first 7 characters of the commit>``, valid for any
    repository name (see ``_name_start``)."""
    suffix = f"-{sha[:7]}"
    return f"{_name_start(repository, 63 - len(suffix))}{suffix}" if repository and sha else ""


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


def read_pull_request(environ: Mapping[str, str]) -> PullRequest | None:
    """The pull request of a ``pull_request(_target)`` event, from the JSON file
    at GITHUB_EVENT_PATH; None for any other event. Raises ContextError when the
    payload cannot be read or lacks the fields a preview needs."""
    event = environ.get("GITHUB_EVENT_NAME", "")
    if event not in PULL_REQUEST_EVENTS:
        return None
    path = environ.get("GITHUB_EVENT_PATH", "")
    where = f"the {event} event payload (GITHUB_EVENT_PATH '{path}')"
    if not path:
        raise ContextError(
            f"GITHUB_EVENT_NAME is '{event}' but GITHUB_EVENT_PATH is not set: "
            "run the action in a GitHub workflow, or set both for a local run"
        )
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ContextError(f"could not read {where}: {exc}") from None
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    head = pull.get("head") if isinstance(pull, dict) else None
    if not isinstance(pull, dict) or not isinstance(head, dict):
        raise ContextError(f"{where} has no pull_request.head: is it really a {event} event?")
    number, ref, sha = pull.get("number"), head.get("ref"), head.get("sha")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ContextError(f"{where} has pull_request.number {number!r}: expected a number")
    if not isinstance(ref, str) or not ref:
        raise ContextError(f"{where} has pull_request.head.ref {ref!r}: expected a branch name")
    try:
        parse_branch("branch", ref)
    except ConfigError:
        raise ContextError(
            f"the pull request's head branch '{ref}' is not a branch name the API accepts: "
            "set the input 'branch'"
        ) from None
    if not isinstance(sha, str) or not COMMIT_SHA.match(sha):
        raise ContextError(f"{where} has pull_request.head.sha {sha!r}: expected a commit SHA")
    action, state = payload.get("action"), pull.get("state")
    return PullRequest(
        number,
        ref,
        sha,
        _full_name(head),
        action=action if isinstance(action, str) else "",
        state=state if isinstance(state, str) else "",
    )


def _full_name(side: object) -> str:
    """``owner/name`` of a pull request's head or base repository; "" when the
    payload has none (GitHub sends ``"repo": null`` once a fork is deleted)."""
    repo = side.get("repo") if isinstance(side, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) else ""


def fork_source(pull: object, repository: str) -> str:
    """What the pull request comes from when its head branch is not this
    repository's ("the fork owner/name", or "a fork that was deleted"); "" when
    it is. Told from the event payload alone: the head repository against the
    base repository and GITHUB_REPOSITORY. A head repository the payload does
    not name counts as a fork: nothing shows the branch is this repository's."""
    head = _full_name(pull.get("head")) if isinstance(pull, dict) else ""
    base = _full_name(pull.get("base")) if isinstance(pull, dict) else ""
    if not head:
        return "a fork that was deleted (the event names no head repository)"
    ours = [name.lower() for name in (base, repository) if name]
    if not ours or any(head.lower() != name for name in ours):
        return f"the fork {head}"
    return ""


def parse_environment(name: str, value: str) -> str:
    if len(value) > MAX_ENVIRONMENT or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ConfigError(
            name, value, "expected an environment name of at most 255 printable characters"
        )
    return value


def _github_api_url(environ: Mapping[str, str]) -> str:
    value = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_GITHUB_API_URL
    try:
        return parse_api_url("GITHUB_API_URL", value)
    except ConfigError:
        shown = "<redacted: contains credentials>" if "@" in value else value
        raise ContextError(
            f"GITHUB_API_URL is '{shown}': the Deployments option (input 'github-token') needs "
            "an https URL such as https://api.github.com (http only for loopback hosts); the "
            "runner sets it, so check the job's env"
        ) from None


def _deployment_settings(
    inputs: _Inputs, environ: Mapping[str, str], flow: str, pull: PullRequest | None
) -> tuple[str, str, str]:
    """(github-token, environment, GitHub API URL), validated."""
    token = inputs.raw("github-token").strip()
    if any(c.isspace() for c in token):
        raise ConfigError("github-token", "<redacted>", "the token must not contain whitespace")
    default = "production"
    if flow in ("preview", "teardown"):
        default = f"preview-pr-{pull.number}" if pull else ""
    environment = parse_environment("environment", inputs.get("environment", default))
    if not token:
        return "", environment, DEFAULT_GITHUB_API_URL
    repository = environ.get("GITHUB_REPOSITORY", "")
    if not REPOSITORY.match(repository):
        raise ContextError(
            f"GITHUB_REPOSITORY is '{repository}': the Deployments option (input "
            "'github-token') needs it as owner/name; run the action in a GitHub workflow"
        )
    return token, environment, _github_api_url(environ)


def _workspace_name(
    inputs: _Inputs, flow: str, pull: PullRequest | None, repository: str, sha: str
) -> str:
    """The input, else ``<repo>-pr-<number>`` for preview and teardown, else
    ``<repo>-<sha7>``. Only a name the user set is blamed on the input."""
    name = inputs.get("workspace-name")
    if name:
        if not WORKSPACE_NAME.match(name):
            raise ConfigError(
                "workspace-name",
                name,
                "expected 1-63 letters, digits, '_', '.', '-', starting with a letter or digit",
            )
        return name
    if flow in ("preview", "teardown"):
        name = preview_workspace_name(repository, pull.number) if pull else ""
    else:
        name = default_workspace_name(repository, sha)
    if name and not WORKSPACE_NAME.match(name):
        raise ContextError(
            f"the default workspace name '{name}', made from GITHUB_REPOSITORY and GITHUB_SHA, "
            "is not one Codesphere takes (1-63 letters, digits, '_', '.', '-', starting with a "
            "letter or digit): set the input 'workspace-name'"
        )
    return name


def load_config(environ: Mapping[str, str]) -> Config:
    """Validate every input; raise ConfigError naming the first bad one."""
    inputs = _Inputs(environ)

    _skip_fork(inputs, environ)
    token = inputs.raw("api-token").strip()
    if not token:
        raise ConfigError(
            "api-token",
            "",
            "set it to a Codesphere API token, e.g. ${{ secrets.CODESPHERE_TOKEN }}",
        )
    if any(c.isspace() for c in token):
        raise ConfigError("api-token", "<redacted>", "the token must not contain whitespace")

    flow = inputs.get("flow", "simple").lower()
    if flow not in FLOWS:
        raise ConfigError("flow", inputs.get("flow"), "expected one of " + ", ".join(FLOWS))

    profile = inputs.get("profile")
    if profile and not PROFILE.match(profile):
        raise ConfigError(
            "profile", profile, "expected letters, digits, '_', '-' and dots, such as 'production'"
        )

    remote = inputs.get("remote", "origin")
    if not REMOTE.match(remote):
        raise ConfigError("remote", remote, "expected a git remote name such as 'origin'")

    pull = read_pull_request(environ) if flow in ("preview", "teardown") else None

    # Empty means "the current branch" for the simple flow, "the triggering
    # branch" for zero-downtime and the pull request's head branch for a preview.
    branch = inputs.get("branch")
    if not branch and flow == "zero-downtime":
        branch = environ.get("GITHUB_REF_NAME", "")
    if not branch and flow == "preview" and pull is not None:
        branch = pull.head_ref
    if branch:
        parse_branch("branch", branch)

    workspace_id_text = inputs.get("workspace-id")
    workspace_ids = (
        parse_workspace_ids("workspace-id", workspace_id_text, flow) if workspace_id_text else ()
    )
    workspace_id = workspace_ids[0] if workspace_ids else None
    team_text = inputs.get("team-id")
    team_id = parse_id("team-id", team_text) if team_text else None
    plan_text = inputs.get("plan-id")
    plan_id = parse_id("plan-id", plan_text) if plan_text else None

    repository = environ.get("GITHUB_REPOSITORY", "")
    sha = environ.get("GITHUB_SHA", "")
    server_url = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")

    git_url_text = inputs.get("git-url")
    if not git_url_text and repository:
        git_url_text = f"{server_url}/{repository}.git"
    git_url = parse_git_url("git-url", git_url_text) if git_url_text else ""

    workspace_name = _workspace_name(inputs, flow, pull, repository, sha)

    domain_text = inputs.get("domain")
    domain = parse_domain("domain", domain_text) if domain_text else ""
    env, secret_env = _env_inputs(inputs)
    health_path = inputs.get("health-check-path")
    github_token, environment, github_api_url = _deployment_settings(inputs, environ, flow, pull)
    run_id = environ.get("GITHUB_RUN_ID", "")
    run_url = f"{server_url}/{repository}/actions/runs/{run_id}" if repository and run_id else ""

    config = Config(
        api_token=token,
        api_url=parse_api_url("api-url", inputs.get("api-url", DEFAULT_API_URL)),
        flow=flow,
        profile=profile,
        prepare=parse_bool("prepare", inputs.get("prepare", "true")),
        test=parse_bool("test", inputs.get("test", "false")),
        stage_timeout=parse_duration("stage-timeout", inputs.get("stage-timeout", "30m")),
        workspace_timeout=parse_duration(
            "workspace-timeout", inputs.get("workspace-timeout", "10m")
        ),
        workspace_id=workspace_id,
        workspace_ids=workspace_ids,
        remote=remote,
        branch=branch,
        team_id=team_id,
        plan_id=plan_id,
        git_url=git_url,
        private_repo=parse_bool("private-repo", inputs.get("private-repo", "false")),
        replicas=parse_positive_int("replicas", inputs.get("replicas", "1")),
        workspace_name=workspace_name,
        env=env + secret_env,
        domain=domain,
        domain_input=domain_text if domain else "",
        domain_path=parse_domain_path("domain-path", inputs.get("domain-path", "/")),
        delete_previous=parse_bool("delete-previous", inputs.get("delete-previous", "false")),
        cleanup_on_failure=parse_bool(
            "cleanup-on-failure", inputs.get("cleanup-on-failure", "true")
        ),
        switch=parse_bool("switch", inputs.get("switch", "true")),
        health_path=parse_http_path("health-check-path", health_path) if health_path else "",
        health_statuses=parse_statuses(
            "health-check-status", inputs.get("health-check-status", "200-399")
        ),
        health_timeout=parse_duration(
            "health-check-timeout", inputs.get("health-check-timeout", "5m")
        ),
        health_domain=parse_bool("health-check-domain", inputs.get("health-check-domain", "true")),
        require_commit=parse_bool("require-commit", inputs.get("require-commit", "false")),
        resolve=parse_resolve(environ.get("CODESPHERE_RELEASE_RESOLVE", "")),
        github_token=github_token,
        environment=environment,
        github_api_url=github_api_url,
        repository=repository,
        sha=sha,
        ref_name=environ.get("GITHUB_REF_NAME", ""),
        server_url=server_url,
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        pull_request=pull,
        run_url=run_url,
        run_id=_run_id(environ),
        debug=environ.get("RUNNER_DEBUG") == "1",
        # Masked everywhere: the tokens and secret-env's values. Plain env values
        # are not secrets (PORT=3000 must not turn every "3000" into "***").
        secrets=(
            token,
            *((github_token,) if github_token else ()),
            *(var.value for var in secret_env if var.value),
        ),
    )
    _check_flow_requirements(config)
    return config


def _env_inputs(inputs: _Inputs) -> tuple[tuple[EnvVar, ...], tuple[EnvVar, ...]]:
    """(env, secret-env), with no name in both."""
    env = env_lines("env", inputs.raw("env"))
    secret_env = env_lines("secret-env", inputs.raw("secret-env"))
    plain = {var.name: number for number, var in env}
    for number, var in secret_env:
        if var.name in plain:
            raise ConfigError(
                "secret-env",
                f"line {number}",
                f"it sets a variable that line {plain[var.name]} of the env input sets too "
                f"{NOT_SHOWN}: set each variable in one of them",
            )
    return tuple(var for _, var in env), tuple(var for _, var in secret_env)


def _skip_fork(inputs: _Inputs, environ: Mapping[str, str]) -> None:
    """A pull request from a fork, under any event (pull_request_target
    included) and whether or not the api-token input is set: raise Skipped,
    which ends the run as skipped, not failed, before any request.

    A fork's branch is code from outside the repository: building it with the
    repository's env, secret-env and API token (pull_request_target runs get
    the secrets) would hand them to whoever wrote it, and building any other
    branch would call the base repository's code the pull request's. So a fork
    gets no preview, and its teardown deletes nothing."""
    flow = inputs.get("flow", "simple").lower()
    path = environ.get("GITHUB_EVENT_PATH", "")
    if flow not in ("preview", "teardown") or not path:
        return
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return  # read_pull_request reports it
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    if not isinstance(pull, dict):
        return
    source = fork_source(pull, environ.get("GITHUB_REPOSITORY", ""))
    if not source:
        return
    number = pull.get("number")
    which = f"pull request #{number}" if isinstance(number, int) else "this pull request"
    raise Skipped(
        f"no {flow} for {which}: it comes from {source}. A fork's pull request gets no "
        "preview and no teardown, whatever the event (pull_request_target included), so "
        "its code never runs with this repository's token and secrets. Nothing was sent to "
        "Codesphere. "
        + (
            "To preview it, push its branch to this repository and open a pull request from there"
            if flow == "preview"
            else "A fork's pull request never had a preview to delete"
        )
    )


def _run_id(environ: Mapping[str, str]) -> str:
    """``<run id>.<attempt>``; for a run outside GitHub a random one, so that two
    local runs never take each other's workspaces for their own."""
    run = environ.get("GITHUB_RUN_ID", "").strip()
    if not run.isdigit():
        return "local-" + _random.token_hex(4)
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "").strip()
    return f"{run}.{attempt if attempt.isdigit() else '1'}"


def _check_flow_requirements(config: Config) -> None:
    flow = config.flow
    _check_require_commit(config)
    if flow in ("preview", "teardown"):
        _check_pull_request(config)
    if flow == "simple" and config.workspace_id is None:
        raise ConfigError(
            "workspace-id", "", "the simple flow needs the id of the workspace to release"
        )
    if flow in CREATING_FLOWS:
        _need_ids(config, ("team-id", config.team_id), ("plan-id", config.plan_id))
        if not config.git_url:
            raise ConfigError(
                "git-url", "", "set it, or run in a workflow where GITHUB_REPOSITORY is set"
            )
    if flow in (*CREATING_FLOWS, "teardown") and not config.workspace_name:
        context = "GITHUB_SHA" if flow == "zero-downtime" else "the pull request event"
        raise ConfigError(
            "workspace-name", "", f"set it, or run where GITHUB_REPOSITORY and {context} are set"
        )
    if flow == "zero-downtime" and not config.branch:
        raise ConfigError(
            "branch", "", "set it, or run where GITHUB_REF_NAME (the triggering branch) is set"
        )
    if flow == "teardown":
        _need_ids(config, ("team-id", config.team_id))
    if flow in SWITCHING_FLOWS:
        _need_ids(config, ("team-id", config.team_id))
        if config.workspace_id is None:
            raise ConfigError(
                "workspace-id",
                "",
                "the rollback flow needs the id of the workspace to point the domain back at, "
                "e.g. the previous-workspace-id output of the last release"
                if flow == "rollback"
                else "the promote flow needs the id of the workspace to point the domain at, "
                "e.g. the workspace-id output of a release with switch: false",
            )
        if not config.domain:
            raise ConfigError("domain", "", f"the {flow} flow needs the domain to switch")


def _check_require_commit(config: Config) -> None:
    """require-commit: true needs a commit to compare with; where none can be
    known it is an input error, before any request (never a check that
    silently does nothing)."""
    if not config.require_commit or config.flow in ("preview", "teardown"):
        return  # preview: the pull request's head; teardown deploys nothing
    if config.flow == "rollback":
        raise ConfigError(
            "require-commit",
            "true",
            "a rollback goes back to an earlier release on purpose, so there is no commit it "
            "must run: remove the input (or set it to false) for flow: rollback",
        )
    if not config.expected_commit:
        shown = f"'{config.sha}'" if config.sha else "not set"
        raise ConfigError(
            "require-commit",
            "true",
            f"it compares the deployed commit with GITHUB_SHA, which is {shown}: run in a "
            "GitHub workflow (the runner sets GITHUB_SHA), or set require-commit to false",
        )


def _need_ids(config: Config, *named: tuple[str, int | None]) -> None:
    for name, value in named:
        if value is None:
            raise ConfigError(name, "", f"the {config.flow} flow needs it (a numeric id)")


def _check_pull_request(config: Config) -> None:
    """preview always, teardown without ``workspace-name``: only a pull request
    event says which preview is meant. On a pull request event, a preview of a
    closed pull request and a teardown of an open one are skipped (Skipped)."""
    pull = config.pull_request
    if pull is not None:
        _check_event_action(config, pull)
        return
    if config.flow == "teardown" and config.workspace_name:
        return
    trigger = (
        f"this run was triggered by '{config.event_name}' (GITHUB_EVENT_NAME)"
        if config.event_name
        else "GITHUB_EVENT_NAME is not set"
    )
    fix = (
        "run it on: pull_request, as in examples/preview.yml"
        if config.flow == "preview"
        else "run it on: pull_request (types: [closed]), or set the input 'workspace-name' "
        "to the preview workspace to delete"
    )
    raise ContextError(f"the {config.flow} flow works on a pull request, but {trigger}: {fix}")


def _check_event_action(config: Config, pull: PullRequest) -> None:
    """A workflow without its ``types:`` or ``if:`` runs the preview job when the
    pull request closes and the teardown job on every push: the event's action
    (and the pull request's state) says which it is. Raise Skipped, in one line
    that names the action and the workflow change that fixes it."""
    seen = f"the event's action is '{pull.action or 'not given'}'"
    if pull.state:
        seen += f" and the pull request is {pull.state}"
    if config.flow == "preview" and pull.closed:
        raise Skipped(
            f"no preview for pull request #{pull.number}: {seen}, and a closed pull request "
            "gets no preview (nothing was created or updated). In the workflow, run the "
            "preview job only while it is open: give it `if: github.event.action != 'closed'` "
            "(or list only `types: [opened, synchronize, reopened]`), as in examples/preview.yml"
        )
    if config.flow == "teardown" and not pull.closed:
        raise Skipped(
            f"no teardown for pull request #{pull.number}: {seen}, and the preview of a pull "
            "request that is not closed is never deleted (nothing was deleted). In the "
            "workflow, run the teardown job only when it closes: `on: pull_request: types: "
            "[closed]`, or `if: github.event.action == 'closed'` on the job, as in "
            "examples/preview.yml"
        )
