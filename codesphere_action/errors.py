"""The small error tree every failure of a release is expressed in.

Each expected error carries the ``status`` output it ends the run with; ``main``
turns it into exactly one ``::error`` annotation. ``Cancelled`` derives from
``BaseException`` (like ``KeyboardInterrupt``) so no ``except Exception`` on the
way up, ours or a library's, can swallow a cancellation.
"""

from __future__ import annotations


class ActionError(Exception):
    """An expected failure: reported as one annotation, never with a traceback."""

    status = "failed"
    title = "Release failed"


class ConfigError(ActionError):
    """An input is missing or malformed; raised before any request is made."""

    title = "Invalid input"

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.input_name = name
        self.value = value
        shown = f"'{value}'" if value else "empty"
        super().__init__(f"input '{name}' is {shown}: {expected}")


class ContextError(ActionError):
    """The workflow's context (its event, a ``GITHUB_*`` variable) does not suit
    the inputs; raised before any request is made."""

    title = "Invalid workflow context"


class Skipped(ActionError):
    """Nothing to do, and that is no failure (a pull request from a fork gets no
    secrets, so no preview): a notice, status ``skipped``, exit code 0."""

    status = "skipped"
    title = "Skipped"


class Superseded(Skipped):
    """A newer release of the same repository serves the path already: this run
    changed nothing (``steps/superseded.py``). No failure: a notice, status
    ``superseded``, exit code 0."""

    status = "superseded"
    title = "Superseded"


class Planned(Skipped):
    """A dry run went as far as it may: the plan is printed, nothing was changed
    (``steps/dry_run.py``). A notice, status ``planned``, exit code 0."""

    status = "planned"
    title = "Dry run"


class WriteInDryRun(RuntimeError):
    """A POST, PUT, PATCH or DELETE was about to be sent in a dry run: a bug in
    the flow, refused by the transport before anything is sent. Not an
    ActionError, so the run ends as an internal error, loudly."""


# The statuses a run ends with and still passes (exit code 0).
PASSING = frozenset({"success", "skipped", "superseded", "planned"})


class Refused(ActionError):
    """A check before a change failed, so nothing was changed (a rollback to a
    workspace that is not up, a teardown of a workspace a domain serves)."""

    title = "Refused"


# Statuses that say a request was turned down, not carried out.
REFUSAL_STATUSES = frozenset({400, 401, 402, 403, 404, 422, 429})


class ApiError(ActionError):
    """Codesphere (or something in front of it) answered with an error status.

    Build one with ``ApiError.of``, which picks the subclass that says what
    the answer means for the request, so callers branch on the type:
    ``Rejected`` (``NotFound``) when Codesphere turned it down and did nothing,
    ``MayHaveLanded`` when it may have been carried out all the same.
    ``problem``: the body was a JSON object (Codesphere's problem JSON), not a
    proxy's page; ``redirected``: the answer came after a redirect."""

    title = "Codesphere API error"

    def __init__(
        self,
        method: str,
        path: str,
        status_code: int,
        problem_title: str,
        detail: str = "",
        trace_id: str = "",
        hint: str = "",
        *,
        problem: bool = True,
        redirected: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.problem_title = problem_title
        self.detail = detail
        self.trace_id = trace_id
        self.problem = problem
        self.redirected = redirected
        message = f"Codesphere API returned {status_code} ({problem_title}) for {method} {path}"
        if detail:
            message += f": {detail}"
        if trace_id:
            message += f" (trace ID {trace_id})"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    @staticmethod
    def of(
        method: str,
        path: str,
        status_code: int,
        problem_title: str,
        detail: str = "",
        trace_id: str = "",
        hint: str = "",
        *,
        problem: bool = True,
        redirected: bool = False,
    ) -> ApiError:
        """The error for this answer, of the subclass that says what it means:
        Codesphere itself turning the request down (a status that says so, its
        problem JSON, no redirect on the way) is ``Rejected``; its 404 is
        ``NotFound`` (after a redirect within the token's scope too); anything
        else (a 5xx, a proxy's 408 or HTML page, a 409) may come
        after the request was carried out: ``MayHaveLanded``."""
        kind: type[ApiError] = MayHaveLanded
        if status_code == 404 and problem:
            # Codesphere's own 404, also behind a redirect to another data center
            # (redirects are followed only within the token's scope): not there.
            kind = NotFound
        elif status_code in REFUSAL_STATUSES and problem and not redirected:
            kind = Rejected
        return kind(
            method,
            path,
            status_code,
            problem_title,
            detail,
            trace_id,
            hint,
            problem=problem,
            redirected=redirected,
        )

    @property
    def refused(self) -> bool:
        """Codesphere itself turned the request down, so it did nothing."""
        return isinstance(self, Rejected)


class Rejected(ApiError):
    """Codesphere turned the request down (its problem JSON, a refusal status):
    nothing was done, so nothing needs to be looked for or undone."""


class NotFound(Rejected):
    """404 from Codesphere itself: the workspace (or domain) does not exist, or
    the token's account cannot see it."""


class MayHaveLanded(ApiError):
    """An error answer that may come after the request was carried out (a 5xx, a
    gateway's timeout, a proxy's page): a caller of a non-idempotent request
    must look at the state before repeating it."""


class TransportError(ActionError):
    """No usable answer: connection failed, timed out or dropped.

    ``maybe_landed`` is true when the request may have reached the server (the
    connection dropped after it was sent); a non-idempotent caller must then
    check the state before repeating it.
    """

    title = "Codesphere API unreachable"

    def __init__(
        self, message: str, *, maybe_landed: bool, idle: bool = False, out_of_time: bool = False
    ) -> None:
        self.maybe_landed = maybe_landed
        self.idle = idle  # a stream read that timed out (no byte for a while), not a break
        # Not sent, or not answered, because the caller's deadline ran out: the
        # wait's own end, no failure of the service.
        self.out_of_time = out_of_time
        super().__init__(message)


class BadAnswer(ActionError):
    """A 2xx answer that is not what the API sends (HTML from a login page or
    a proxy, JSON of the wrong shape): the request's outcome is unknown."""

    title = "Unexpected answer"


class RedirectRefused(ActionError):
    """The API redirected to a host the token must not be sent to."""

    title = "Redirect refused"


class StageFailed(ActionError):
    """A pipeline stage ended in failure or was aborted."""

    title = "Stage failed"

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(message)


def outcome_unknown(error: ActionError) -> bool:
    """Whether a request that failed this way may well have been carried out, so
    that a caller of a non-idempotent request looks at the state (and goes on
    with what it finds) before doing anything again: no answer after it was
    sent, a 5xx (a gateway gave up while the backend worked), or a 2xx that is
    not Codesphere's JSON. Any other error answer fails the request; what it
    may have made all the same is the cleanup's to look for."""
    if isinstance(error, TransportError):
        return error.maybe_landed
    if isinstance(error, MayHaveLanded):
        return error.status_code >= 500
    return isinstance(error, BadAnswer)


class BakeFailed(ActionError):
    """The release failed its bake (``steps/bake.py``) and was undone."""

    title = "Bake failed"


class WaitTimeout(ActionError):
    """A wait passed its deadline (a stage, or a workspace starting)."""

    status = "timed-out"
    title = "Timed out"


class Cancelled(BaseException):
    """The runner cancelled the job (SIGINT or SIGTERM)."""

    status = "cancelled"
    title = "Cancelled"

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"the job was cancelled ({signal_name} received)")
