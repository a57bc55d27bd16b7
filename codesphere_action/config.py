"""The action's inputs and the workflow's context -> one frozen, validated ``Config``.

Everything here runs before the first request and imports nothing but the
standard library, so a bad input fails in milliseconds. The parsers are in
``inputs.py`` (one input each) and ``dotenv.py`` (env, secret-env), the
workflow's context in ``github_context.py``; which inputs a flow needs and its
defaults come from its ``FlowSpec`` (``flows/specs.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .addresses import parse_resolve
from .create_settings import CreateSettings, read_create_settings
from .dotenv import env_and_secrets
from .errors import ConfigError, ContextError
from .flows.specs import FLOW_NAMES, SPECS, FlowSpec
from .github_context import (
    PullRequest,
    read_github_api_url,
    read_pull_request,
    read_run_id,
    skip_fork,
)
from .input_uses import Unused, ignored_inputs, unused_inputs
from .inputs import (
    COMMIT_SHA,
    DEFAULT_API_URL,
    DEFAULT_GITHUB_API_URL,
    PROFILE,
    REMOTE,
    REPOSITORY,
    SHOW_LOGS,
    WORKSPACE_NAME,
    Inputs,
    check_renamed,
    default_app_name,
    default_workspace_name,
    parse_age,
    parse_api_url,
    parse_bool,
    parse_branch,
    parse_choice,
    parse_count,
    parse_domain,
    parse_domain_path,
    parse_duration,
    parse_environment,
    parse_git_url,
    parse_http_path,
    parse_id,
    parse_positive_int,
    parse_statuses,
    parse_workspace_ids,
    preview_workspace_name,
)
from .models import EnvVar
from .needs import bake_time, check_needs


@dataclass(frozen=True)
class RunContext:
    """The GitHub run this release is part of (``GITHUB_*``, the event), for
    names, marks, links and the summary."""

    repository: str = ""  # owner/name
    sha: str = ""
    ref_name: str = ""
    server_url: str = "https://github.com"
    event_name: str = ""
    pull_request: PullRequest | None = None
    url: str = ""  # the run's page
    id: str = ""  # GITHUB_RUN_ID.GITHUB_RUN_ATTEMPT: this run, in the mark (ownership.py)
    # When this run of the action started: UTC with milliseconds
    # (2026-12-03T17:04:05.123Z), taken once by main; in the mark (ownership.py).
    started: str = ""

    @classmethod
    def read(
        cls, environ: Mapping[str, str], pull: PullRequest | None, started: str = ""
    ) -> RunContext:
        repository = environ.get("GITHUB_REPOSITORY", "")
        server_url = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run = environ.get("GITHUB_RUN_ID", "")
        return cls(
            repository=repository,
            sha=environ.get("GITHUB_SHA", ""),
            ref_name=environ.get("GITHUB_REF_NAME", ""),
            server_url=server_url,
            event_name=environ.get("GITHUB_EVENT_NAME", ""),
            pull_request=pull,
            url=f"{server_url}/{repository}/actions/runs/{run}" if repository and run else "",
            id=read_run_id(environ),
            started=started,
        )


@dataclass(frozen=True)
class HealthSettings:
    """The health check (health.py): empty ``path`` is off; ``statuses`` are
    inclusive ranges; ``domain``: also check the domain after the switch, and
    switch back if it fails."""

    path: str = ""
    statuses: tuple[tuple[int, int], ...] = ((200, 399),)
    timeout: float = 300.0
    domain: bool = True
    # Test seam (CODESPHERE_RELEASE_RESOLVE): host -> loopback host:port, so the
    # tests can serve a custom domain locally. Loopback targets only.
    resolve: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GitHubSettings:
    """GitHub bookkeeping (deployments, the preview comment): off while ``token``
    is empty."""

    token: str = field(default="", repr=False)
    environment: str = ""
    api_url: str = DEFAULT_GITHUB_API_URL


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
    # The app its releases are of (the mark's app, which prune groups releases
    # without a domain by): workspace-name, else the repository part of the default.
    app: str = ""
    env: tuple[EnvVar, ...] = ()  # env and secret-env together, in that order
    # ASCII (an IDN's xn-- form), lower case; the flows switch to the API's spelling.
    domain: str = ""
    domain_input: str = ""  # the input as given (an IDN's Unicode form), for the log
    domain_path: str = "/"  # normalised: no trailing slash (but "/")
    delete_previous: bool = False
    cleanup_on_failure: bool = True
    switch: bool = True  # zero-downtime: move the domain (false: stage the release only)
    # Seconds the release is watched after its switch (canary, zero-downtime), 0: none.
    bake_time: float = 0.0
    health: HealthSettings = field(default_factory=HealthSettings)
    require_commit: bool = False
    github: GitHubSettings = field(default_factory=GitHubSettings)
    run: RunContext = field(default_factory=RunContext)
    debug: bool = False
    # dry-run: read and validate, print the plan, write nothing (steps/dry_run.py).
    dry_run: bool = False
    # prune: the earlier releases kept per domain path, and the age (seconds) past
    # which a preview or a leftover goes (steps/pruning.py).
    keep: int = 1
    max_age: float = 7 * 86400.0
    # show-logs: "failure" (the failing step's log) or "always" (every step's, steps/logs.py).
    show_logs: str = "failure"
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # The names secret-env sets: the log counts them, never lists them.
    secret_names: frozenset[str] = field(default=frozenset(), repr=False)
    # What a create sends beyond its required fields, secret-store, and the ones a
    # flow that creates nothing ignores (create_settings.py).
    create: CreateSettings = field(default_factory=CreateSettings)
    # The inputs set (to no default) that the flow does not read, and those it
    # reads that other settings leave unused (input_uses.py), for one warning.
    ignored: tuple[str, ...] = ()
    unused: tuple[Unused, ...] = ()

    @property
    def spec(self) -> FlowSpec:
        return SPECS[self.flow]

    def __repr__(self) -> str:  # the token must never reach a log through a repr
        return f"Config(flow={self.flow!r}, api_url={self.api_url!r}, ...)"

    @property
    def pull_request(self) -> PullRequest | None:
        return self.run.pull_request

    @property
    def domain_url(self) -> str:
        return f"https://{self.domain}{self.domain_path}" if self.domain else ""

    @property
    def expected_commit(self) -> str:
        """The commit this run releases, when it knows it ("" otherwise), as the
        flow's spec says: the pull request's head for a preview; GITHUB_SHA for
        promote, with require-commit (the user asked for it, whatever the
        branch), and otherwise when the branch released is the one the run was
        triggered on (the simple flow with no branch pulls whatever branch the
        workspace is on); none for a rollback, which goes back on purpose."""
        commit = self.spec.commit
        if commit == "pull-request":
            pull = self.run.pull_request
            return pull.head_sha if pull else ""
        own = commit == "own-branch" and bool(self.branch) and self.branch == self.run.ref_name
        if commit == "sha" or own or (commit == "own-branch" and self.require_commit):
            return self.run.sha if COMMIT_SHA.match(self.run.sha) else ""
        return ""

    @property
    def deployment_ref(self) -> str:
        """The commit a GitHub deployment is for: the pull request's head for a
        preview (GITHUB_SHA is the merge commit there), else GITHUB_SHA."""
        pull = self.run.pull_request
        if self.spec.commit == "pull-request" and pull is not None:
            return pull.head_sha
        return self.run.sha


def _github_settings(
    inputs: Inputs, environ: Mapping[str, str], spec: FlowSpec, pull: PullRequest | None
) -> GitHubSettings:
    """github-token, deployment-environment and the GitHub API URL, validated."""
    token = inputs.raw("github-token").strip()
    if any(c.isspace() for c in token):
        raise ConfigError("github-token", "<redacted>", "the token must not contain whitespace")
    default = "production"
    if spec.environment == "preview":
        default = f"preview-pr-{pull.number}" if pull else ""
    environment = parse_environment(
        "deployment-environment", inputs.get("deployment-environment", default)
    )
    if not token:
        return GitHubSettings("", environment)
    repository = environ.get("GITHUB_REPOSITORY", "")
    if not REPOSITORY.match(repository):
        raise ContextError(
            f"GITHUB_REPOSITORY is '{repository}': the Deployments option (input "
            "'github-token') needs it as owner/name; run the action in a GitHub workflow"
        )
    return GitHubSettings(token, environment, read_github_api_url(environ))


def _workspace_name(
    inputs: Inputs, spec: FlowSpec, pull: PullRequest | None, repository: str, sha: str
) -> str:
    """The input, else the flow's default: ``<repo>-pr-<number>`` (preview,
    teardown) or ``<repo>-<sha7>``. Only a name the user set is blamed on the
    input."""
    name = inputs.get("workspace-name")
    if name:
        if not WORKSPACE_NAME.match(name):
            raise ConfigError(
                "workspace-name",
                name,
                "expected 1-63 letters, digits, '_', '.', '-', starting with a letter or digit",
            )
        return name
    if spec.default_name == "pull-request":
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


def load_config(environ: Mapping[str, str], started: str = "") -> Config:
    """Validate every input; raise ConfigError naming the first bad one (and
    Skipped or ContextError for a workflow context that does not suit them).
    ``started``: when this run of the action started (``clock.utc_stamp``)."""
    inputs = Inputs(environ)
    flow = _flow(inputs, environ)
    token = _api_token(inputs)
    spec = _spec(inputs, flow)
    pull = read_pull_request(environ) if spec.pull_request else None
    run = RunContext.read(environ, pull, started)
    workspace_ids = _workspace_ids(inputs, spec)
    domain_text = inputs.get("domain")
    env, secret_env = env_and_secrets(inputs.raw("env"), inputs.raw("secret-env"))
    github = _github_settings(inputs, environ, spec, pull)
    git_url = _git_url(inputs, run)
    config = Config(
        api_token=token,
        api_url=parse_api_url("api-url", inputs.get("api-url", DEFAULT_API_URL)),
        flow=flow,
        profile=_profile(inputs),
        prepare=_bool(inputs, "prepare", "true"),
        test=_bool(inputs, "test", "false"),
        stage_timeout=_duration(inputs, "stage-timeout", "30m"),
        workspace_timeout=_duration(inputs, "workspace-timeout", "10m"),
        workspace_id=workspace_ids[0] if workspace_ids else None,
        workspace_ids=workspace_ids,
        remote=_remote(inputs),
        branch=_branch(inputs, environ, spec, pull),
        team_id=_optional_id(inputs, "team-id"),
        plan_id=_optional_id(inputs, "plan-id"),
        git_url=git_url,
        private_repo=_bool(inputs, "private-repo", "false"),
        replicas=parse_positive_int("replicas", inputs.get("replicas", "1")),
        workspace_name=_workspace_name(inputs, spec, pull, run.repository, run.sha),
        app=inputs.get("workspace-name") or default_app_name(run.repository),
        env=env + secret_env,
        domain=parse_domain("domain", domain_text) if domain_text else "",
        domain_input=domain_text,
        domain_path=parse_domain_path("domain-path", inputs.get("domain-path", "/")),
        delete_previous=_bool(inputs, "delete-previous", "false"),
        cleanup_on_failure=_bool(inputs, "cleanup-on-failure", "true"),
        switch=_bool(inputs, "switch", "true"),
        bake_time=bake_time(inputs, spec),
        health=_health(inputs, environ),
        require_commit=_bool(inputs, "require-commit", "false"),
        github=github,
        run=run,
        debug=environ.get("RUNNER_DEBUG") == "1",
        dry_run=_bool(inputs, "dry-run", "false"),
        keep=parse_count("keep", inputs.get("keep", "1")),
        max_age=parse_age("max-age", inputs.get("max-age", "7d")),
        show_logs=parse_choice("show-logs", inputs.get("show-logs", "failure"), SHOW_LOGS),
        secrets=_secrets(token, github, git_url, secret_env),
        secret_names=frozenset(var.name for var in secret_env),
        create=read_create_settings(inputs),
        ignored=ignored_inputs(inputs, spec),
        unused=unused_inputs(inputs, spec),
    )
    check_needs(config)
    return config


def _flow(inputs: Inputs, environ: Mapping[str, str]) -> str:
    """The flow's name; Skipped first for a pull request flow on a fork's pull
    request (it gets nothing), then the inputs under an old name."""
    flow = inputs.get("flow", "simple").lower()
    if flow in SPECS and SPECS[flow].pull_request:
        skip_fork(flow, environ)
    check_renamed(inputs)
    return flow


def _spec(inputs: Inputs, flow: str) -> FlowSpec:
    if flow not in SPECS:
        raise ConfigError("flow", inputs.get("flow"), "expected one of " + ", ".join(FLOW_NAMES))
    return SPECS[flow]


def _bool(inputs: Inputs, name: str, default: str) -> bool:
    return parse_bool(name, inputs.get(name, default))


def _duration(inputs: Inputs, name: str, default: str) -> float:
    return parse_duration(name, inputs.get(name, default))


def _secrets(
    token: str, github: GitHubSettings, git_url: str, secret_env: tuple[EnvVar, ...]
) -> tuple[str, ...]:
    """What is masked everywhere: the tokens, a git-url's ``user:token@`` (the user
    part may be a token too) and secret-env's values. Plain env values are not
    secrets (PORT=3000 must not turn every "3000" into "***")."""
    url = urlsplit(git_url)
    values = (token, github.token, url.password, url.username, *(v.value for v in secret_env))
    return tuple(value for value in values if value)


def _api_token(inputs: Inputs) -> str:
    token = inputs.raw("api-token").strip()
    if not token:
        raise ConfigError(
            "api-token",
            "",
            "set it to a Codesphere API token, e.g. ${{ secrets.CODESPHERE_TOKEN }}",
        )
    if any(c.isspace() for c in token):
        raise ConfigError("api-token", "<redacted>", "the token must not contain whitespace")
    return token


def _profile(inputs: Inputs) -> str:
    profile = inputs.get("profile")
    if profile and not PROFILE.match(profile):
        raise ConfigError(
            "profile", profile, "expected letters, digits, '_', '-' and dots, such as 'production'"
        )
    return profile


def _remote(inputs: Inputs) -> str:
    remote = inputs.get("remote", "origin")
    if not REMOTE.match(remote):
        raise ConfigError("remote", remote, "expected a git remote name such as 'origin'")
    return remote


def _branch(
    inputs: Inputs, environ: Mapping[str, str], spec: FlowSpec, pull: PullRequest | None
) -> str:
    """The input, else the flow's default: "the current branch" (simple, ""), the
    triggering branch (zero-downtime), the pull request's head branch (preview)."""
    branch = inputs.get("branch")
    if not branch and spec.default_branch == "ref":
        branch = environ.get("GITHUB_REF_NAME", "")
    if not branch and spec.default_branch == "pull-request" and pull is not None:
        branch = pull.head_ref
    return parse_branch("branch", branch) if branch else ""


def _workspace_ids(inputs: Inputs, spec: FlowSpec) -> tuple[int, ...]:
    text = inputs.get("workspace-id")
    if not text:
        return ()
    return parse_workspace_ids("workspace-id", text, spec.name, many=spec.ids == "list")


def _optional_id(inputs: Inputs, name: str) -> int | None:
    text = inputs.get(name)
    return parse_id(name, text) if text else None


def _git_url(inputs: Inputs, run: RunContext) -> str:
    """The input, else this repository on its GitHub server."""
    text = inputs.get("git-url")
    if not text and run.repository:
        text = f"{run.server_url}/{run.repository}.git"
    return parse_git_url("git-url", text) if text else ""


def _health(inputs: Inputs, environ: Mapping[str, str]) -> HealthSettings:
    path = inputs.get("health-check-path")
    return HealthSettings(
        path=parse_http_path("health-check-path", path) if path else "",
        statuses=parse_statuses(
            "health-check-status", inputs.get("health-check-status", "200-399")
        ),
        timeout=parse_duration("health-check-timeout", inputs.get("health-check-timeout", "5m")),
        domain=parse_bool("health-check-domain", inputs.get("health-check-domain", "true")),
        resolve=parse_resolve(environ.get("CODESPHERE_RELEASE_RESOLVE", "")),
    )
