"""Where Codesphere's documents leave a behaviour open, the emulator can play each variant.

``Variants`` is emulator-wide: ``Emulator(variants=Variants(log_end="cut"))`` or, at run
time, ``emu.set_variants(log_end="cut")``. The defaults are the behaviour the emulator
always had. See README.md ("Variants") for what each one does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

LOG_ENDS = ("with_step", "after_last_line", "cut", "open_silent", "open_keepalive")
LINE_ENDINGS = ("\n", "\r\n", "\r")
ENTRY_ORDERS = ("ide_first", "customers_first", "shuffled")
REPLICA_IDS = ("index", "pod")
ON_STARTS = ("stale", "reset")
IDLE_STEPS = ("waiting", "empty")
DOMAIN_MATCHES = ("any_case", "exact")
# What a status answer calls a waiting entry or step: the spec's name, or one it
# does not list (an API newer than its published spec).
WAITING_STATES = ("waiting", "pending")
MISSING_BRANCHES = ("no_clone", "refuse")
# When a created workspace gets its id: when the create is processed (the
# workspace shows up at once), or when it arrives (a sequence hands the id out
# at the transaction's start; a slow create then shows up after a faster one
# that got a higher id).
ID_ORDERS = ("commit", "arrival")
# What the run stage's status shows while a landscape deploy is under way: the
# servers as they were ("keep"), or none until the deploy allocates them, then
# the previous run's entries as they were for deploy_stale_seconds ("gap", what
# issue 20 saw when the simple flow stopped the run and deployed).
DEPLOY_STATUSES = ("keep", "gap")
# How the domain proxy spreads a path's requests over the workspaces its list
# names (Codesphere's load balancer; its A/B-testing guide says it keeps a user
# on one workspace, no document says how): each request to the next workspace
# ("round_robin"), or a visitor kept on one by a cookie, a new visitor to the
# next workspace ("sticky").
BALANCERS = ("sticky", "round_robin")
# In which order the API lists a path's workspaces in a domain's answers (GET of
# the domain, the team's domains, the answer to PUT .../workspace-connections):
# as the last PUT wrote them, sorted by id, in reverse (newest connection
# first), or in a new order per answer. No document says Codesphere keeps the
# order written; what is stored (and what the load balancer goes by) does not
# change.
MAP_ORDERS = ("as_written", "sorted", "reversed", "shuffled")

_CHOICES: dict[str, tuple[str, ...]] = {
    "log_end": LOG_ENDS,
    "line_ending": LINE_ENDINGS,
    "entry_order": ENTRY_ORDERS,
    "replica_ids": REPLICA_IDS,
    "on_start": ON_STARTS,
    "idle_steps": IDLE_STEPS,
    "domain_match": DOMAIN_MATCHES,
    "waiting_state": WAITING_STATES,
    "missing_branch": MISSING_BRANCHES,
    "id_order": ID_ORDERS,
    "deploy_status": DEPLOY_STATUSES,
    "balancer": BALANCERS,
    "map_order": MAP_ORDERS,
}


@dataclass(frozen=True)
class Variants:
    """One choice for each behaviour no document pins down (defaults: the old behaviour)."""

    log_end: str = "with_step"  # when a step's SSE log stream ends
    log_cut_seconds: float = 0.5  # log_end="cut": a proxy cuts every stream this long after open
    keepalive_seconds: float = 0.2  # log_end="open_keepalive": ": keep-alive" comment period
    line_ending: str = "\n"  # of every SSE line
    sse_charset: str | None = None  # None: "text/event-stream" with no charset parameter
    entry_order: str = "ide_first"  # order of the pipeline status entries
    replica_ids: str = "index"  # "0", "1", ... or pod-like names
    timestamps: bool = True  # False: no startedAt/finishedAt anywhere in the status
    on_start: str = "stale"  # what the status shows during the start latency
    stop_latency: float = 0.0  # .../stop takes effect this long after the request
    idle_steps: str = "waiting"  # steps of idle entries: one {"state":"waiting"} each, or []
    domain_match: str = "any_case"  # .../domain/{domainName}: any case, or exactly as listed
    # States outside the spec's enum (its response check looks at the spec's names):
    waiting_state: str = "waiting"  # what a waiting entry or step is called
    skipped_steps: bool = False  # True: a successful entry's last step reads "skipped"
    # POST /workspaces with an initialBranch that does not exist: the workspace is
    # made without a clone (git calls answer 400), or the create answers 400.
    missing_branch: str = "no_clone"
    id_order: str = "commit"  # a create's id: handed out when it is processed, or on arrival
    # Multi-server: the run stage's status during a landscape deploy (DEPLOY_STATUSES).
    deploy_status: str = "keep"
    deploy_stale_seconds: float = 0.3  # deploy_status="gap": the old entries, after the gap
    # The domain proxy with several workspaces on a path (BALANCERS).
    balancer: str = "sticky"
    # How a domain's answers list each path's workspaces (MAP_ORDERS).
    map_order: str = "as_written"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"variant {name}={value!r}; expected one of {allowed}")
        for name in (
            "log_cut_seconds",
            "keepalive_seconds",
            "stop_latency",
            "deploy_stale_seconds",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"variant {name}={value!r}; expected seconds >= 0")
        if self.keepalive_seconds == 0:
            raise ValueError("variant keepalive_seconds must be > 0")
        for name in ("timestamps", "skipped_steps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"variant {name}={getattr(self, name)!r}; expected True or False")
        if self.sse_charset is not None and not (
            isinstance(self.sse_charset, str) and self.sse_charset.strip()
        ):
            raise ValueError(f"variant sse_charset={self.sse_charset!r}; expected None or a name")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
