"""What an answer of the Codesphere API means: checked where it enters the program.

- an error status: ``ApiError.of`` with Codesphere's problem JSON (``title``
  or ``reason``, ``detail``, ``traceId``), redacted, then bounded;
- a 404 that is not problem JSON (an HTML page): a website, not the API, so
  the api-url looks wrong (never "not found", which would blame an id);
- a 2xx body: JSON of the API, else ``BadAnswer`` naming what came instead.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from ..errors import ApiError, BadAnswer
from ..github import Reporter

# The spec's server and the official CLI's default: the example the hints give.
API_URL_EXAMPLE = "https://cloud.codesphere.com/api"
HINTS = {
    401: "Check the api-token input: the token is missing, wrong or expired",
    403: "The token's account lacks access to this resource: check the team and its role",
}
MAX_DETAIL = 200  # characters of a proxy's page quoted in an error
Expect = Literal["json", "none"]


def content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def api_url_hint(base_url: str) -> str:
    if not urlsplit(base_url).path.rstrip("/").endswith("/api"):
        return (
            f"the api-url input ('{base_url}') looks wrong: it should end in /api, "
            f"e.g. {API_URL_EXAMPLE} (self-hosted: https://<your host>/api)"
        )
    return (
        "check the api-url input (it usually ends in /api) and that no proxy or sign-in "
        "page stands in between"
    )


def bad_answer(base_url: str, method: str, path: str, what: str) -> BadAnswer:
    return BadAnswer(
        f"the API at {base_url} answered {method} {path} with {what}, not Codesphere's "
        f"JSON: {api_url_hint(base_url)}"
    )


def bad_log_answer(method: str, path: str, what: str) -> BadAnswer:
    """A log route that answered with something other than an event stream. Its
    stream is opened only after the API's other calls were answered (a stage's
    start, its status), so the api-url is right: something in front of the log
    routes answers them (a sign-in page, a proxy)."""
    return BadAnswer(
        f"the log route answered {method} {path} with {what}, not an event stream: the "
        "API's other calls were answered, so something in front of its log routes (a proxy "
        "or a sign-in page) answers them instead"
    )


def error_of(
    base_url: str, reporter: Reporter, method: str, path: str, response: requests.Response
) -> ApiError | BadAnswer:
    """The error an answer of status >= 400 means (module docstring)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if response.status_code == 404 and response.content and not isinstance(problem, dict):
        html = "html" in content_type(response) or response.content.lstrip()[:1] == b"<"
        return BadAnswer(
            f"the API at {base_url} answered {method} {path} with 404 and "
            f"{'an HTML page' if html else 'a body that is not JSON'}, not Codesphere's problem "
            f"JSON: that path is not a route of its API, so {api_url_hint(base_url)}"
        )
    title, detail, trace_id = response.reason or "error", "", ""
    if isinstance(problem, dict):
        title = str(problem.get("title") or problem.get("reason") or title)
        detail = str(problem.get("detail") or "")
        trace_id = str(problem.get("traceId") or "")
    elif response.text:
        detail = " ".join(response.text.split())
    # Redacted before it is cut: a cut must never leave part of a secret.
    detail = reporter.redact(detail)
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    return ApiError.of(
        method,
        path,
        response.status_code,
        reporter.redact(title),
        detail,
        trace_id,
        HINTS.get(response.status_code, "") if isinstance(problem, dict) else "",
        # An empty 404 is the API's own (a deleted workspace's DELETE), never a page.
        problem=isinstance(problem, dict) or (response.status_code == 404 and not response.content),
        redirected=bool(response.history),
    )


def decode(
    base_url: str, method: str, path: str, response: requests.Response, expect: Expect
) -> Any:
    """The answer's JSON; BadAnswer unless it is Codesphere's JSON (or, for calls
    that answer nothing, empty)."""
    kind = content_type(response)
    is_json = kind == "application/json" or kind.endswith("+json")
    if not response.content:
        if expect == "none":
            return None
        raise bad_answer(base_url, method, path, "an empty answer")
    if not is_json and (kind or response.content.lstrip()[:1] == b"<"):
        what = (
            "HTML"
            if "html" in kind or response.content.lstrip()[:1] == b"<"
            else (kind or "an untyped body")
        )
        raise bad_answer(base_url, method, path, what)
    try:
        return response.json()
    except ValueError:
        raise bad_answer(base_url, method, path, "a body that is not JSON") from None
