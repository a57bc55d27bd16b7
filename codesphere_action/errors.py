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


class Refused(ActionError):
    """A check before a change failed, so nothing was changed (a rollback to a
    workspace that is not up, a teardown of a workspace a domain serves)."""

    title = "Refused"


# Statuses that say a request was turned down, not carried out.
REFUSAL_STATUSES = frozenset({400, 401, 402, 403, 404, 422, 429})


class ApiError(ActionError):
    """Codesphere answered with an error status (problem JSON).

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

    @property
    def refused(self) -> bool:
        """Codesphere itself turned the request down, so it did nothing: a status
        that says so, its problem JSON, and no redirect on the way. Anything else
        (a proxy's 408, a 409, an HTML page) may come after the request was
        carried out."""
        return self.status_code in REFUSAL_STATUSES and self.problem and not self.redirected


class TransportError(ActionError):
    """No usable answer: connection failed, timed out or dropped.

    ``maybe_landed`` is true when the request may have reached the server (the
    connection dropped after it was sent); a non-idempotent caller must then
    check the state before repeating it.
    """

    title = "Codesphere API unreachable"

    def __init__(self, message: str, *, maybe_landed: bool, idle: bool = False) -> None:
        self.maybe_landed = maybe_landed
        self.idle = idle  # a stream read that timed out (no byte for a while), not a break
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
