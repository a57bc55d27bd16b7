"""Wire config, client, flow and reporting together; the one place a run ends.

An expected failure becomes one ``::error`` annotation, a summary section and
outputs with its ``status``; an unexpected one (a bug) also shows its
traceback, with secrets redacted. Outputs are written on every path.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from .clock import Clock, SystemClock, utc_stamp
from .config import Config, load_config
from .context import Result
from .errors import PASSING, ActionError, Cancelled, Skipped, Superseded
from .flows import Flow, load
from .github import Reporter, sentence
from .input_uses import ignored_warning
from .inputs import input_env_name
from .signals import CancelGuard
from .summary import flow_words, render_summary
from .timings import DEFAULT_TUNING, Tuning

if TYPE_CHECKING:  # requests is imported lazily, after the inputs are known to be good
    from .bookkeeping import GitHubBookkeeping


def main(
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    clock: Clock | None = None,
    flows: Mapping[str, Flow] | None = None,
    tuning: Tuning = DEFAULT_TUNING,
    started: datetime | None = None,
) -> int:
    """Run one release as the runner asks (inputs in ``environ``); return the exit
    code. ``flows``: flow name -> function, for the tests (default: the flow's
    module, ``flows.load``); ``tuning``: how it waits (the benchmark's reference
    poller passes another); ``started``: when the run started (default: now, read
    once here; the mark records it, ``steps/superseded.py`` compares it)."""
    stamp = utc_stamp(started)
    environ = os.environ if environ is None else environ
    reporter = _reporter(environ, stream)
    clock = clock or SystemClock()
    guard = CancelGuard(clock.now)
    guard.install()
    result = Result(flow=environ.get(input_env_name("flow"), "").strip() or "simple")
    config: Config | None = None
    bookkeeping: GitHubBookkeeping | None = None
    try:
        config = load_config(environ, stamp)
        for secret in config.secrets:
            reporter.mask(secret)
        result.flow = config.flow
        if config.ignored or config.unused:
            reporter.warning(
                sentence(ignored_warning(config.flow, config.ignored, config.unused)),
                title="Inputs ignored",
            )
        if config.github.token and not config.dry_run:  # a dry run records nothing
            from .bookkeeping import GitHubBookkeeping  # noqa: PLC0415

            bookkeeping = GitHubBookkeeping(config, reporter, clock, guard.budget)
            bookkeeping.begin()
        flow = flows[config.flow] if flows and config.flow in flows else load(config.flow)
        _run(flow, config, reporter, clock, guard, result, tuning)
        result.status = "success"
    except (Cancelled, ActionError) as exc:
        guard.quiet()
        _expected_end(reporter, result, exc)
    except Exception as exc:  # noqa: BLE001 (a bug: say so, with the traceback)
        guard.quiet()
        _bug(reporter, result, exc)
    finally:
        guard.quiet()
        # Outputs and summary first: after a cancellation the GitHub calls get
        # only what is left of the runner's window, and may not get it.
        _finish(reporter, result, config)
        if bookkeeping is not None:
            with guard.interruptible():
                bookkeeping.finish(result)
        guard.restore()
    return 0 if result.status in PASSING else 1


def _reporter(environ: Mapping[str, str], stream: TextIO | None) -> Reporter:
    """The reporter of this run, with the tokens masked before anything else can
    print them."""
    reporter = Reporter(
        stream,
        debug=environ.get("RUNNER_DEBUG") == "1",
        output_path=environ.get("GITHUB_OUTPUT", ""),
        summary_path=environ.get("GITHUB_STEP_SUMMARY", ""),
    )
    for name in ("api-token", "github-token"):
        token = environ.get(input_env_name(name), "").strip()
        if token:
            reporter.mask(token)
    return reporter


def _bug(reporter: Reporter, result: Result, exc: Exception) -> None:
    """An unexpected error: the traceback (redacted) and one ::error saying so."""
    result.status = "failed"
    reporter.info(reporter.redact("".join(traceback.format_exc())))
    result.message = _with_aftermath(
        f"unexpected {type(exc).__name__}: {exc}. This is a bug in codesphere-release; "
        "please report it with this log",
        result,
    )
    reporter.error(result.message, title="Internal error")


def _run(
    flow: Flow,
    config: Config,
    reporter: Reporter,
    clock: Clock,
    guard: CancelGuard,
    result: Result,
    tuning: Tuning,
) -> None:
    # Imported here: requests costs ~0.1 s, which a bad input need not pay.
    from .api.codesphere import Codesphere  # noqa: PLC0415
    from .api.transport import Transport  # noqa: PLC0415
    from .context import Context  # noqa: PLC0415
    from .waiting import Waiter  # noqa: PLC0415

    transport = Transport(
        config.api_url, config.api_token, reporter=reporter, clock=clock, read_only=config.dry_run
    )
    client = Codesphere(transport)
    try:
        ctx = Context(
            config=config,
            client=client,
            reporter=reporter,
            clock=clock,
            waiter=Waiter(clock, tuning.quick, tuning.stage),
            guard=guard,
            result=result,
            tuning=tuning,
        )
        flow(ctx)
    finally:
        client.close()


def _expected_end(reporter: Reporter, result: Result, exc: Cancelled | ActionError) -> None:
    """An expected end: a notice when skipped, else one ::error with the aftermath."""
    result.status = exc.status
    if isinstance(exc, Skipped):  # superseded too: nothing went wrong
        # A superseded run says what it left (its own workspace deleted).
        superseded = isinstance(exc, Superseded)
        result.message = _with_aftermath(str(exc), result) if superseded else str(exc)
        reporter.notice(sentence(result.message), title=exc.title)
        return
    result.message = _with_aftermath(str(exc), result)
    title = "Release cancelled" if isinstance(exc, Cancelled) else exc.title
    reporter.error(result.message, title=title)


def _with_aftermath(message: str, result: Result) -> str:
    return " ".join([message.rstrip(".") + ".", *map(sentence, result.aftermath)])


def _finish(reporter: Reporter, result: Result, config: Config | None) -> None:
    result.set("status", result.status)
    if result.status == "success":
        url = result.outputs["domain-url"] or result.outputs["workspace-url"]
        note = " ".join(map(sentence, result.aftermath))
        done = (
            result.notice or f"Released to {url or 'workspace ' + result.outputs['workspace-id']}"
        )
        reporter.notice(
            f"{done.rstrip('.')}. {note}".strip(),
            title=f"Codesphere {flow_words(result.flow)[0].lower()} succeeded",
        )
    # Each file on its own: what can be written is written.
    try:
        reporter.write_outputs(result.outputs)
    except OSError as exc:
        _outputs_not_written(reporter, result, exc)
    try:
        reporter.write_summary(render_summary(result, config, reporter.redact))
    except OSError as exc:
        # The summary is for people; later steps do not read it.
        reporter.warning(
            f"could not write the job summary to {reporter.summary_path} "
            f"(GITHUB_STEP_SUMMARY): {_reason(exc)}. The {result.flow} flow is not affected "
            f"by this (status {result.status})",
            title="Job summary not written",
        )


def _outputs_not_written(reporter: Reporter, result: Result, exc: OSError) -> None:
    """GITHUB_OUTPUT could not be written: later steps need the outputs, so the
    step fails, saying what was released all the same."""
    out = result.outputs
    what = [f"status {result.status}"]
    if out["workspace-id"]:
        url = f" ({out['workspace-url']})" if out["workspace-url"] else ""
        what.append(f"workspace {out['workspace-id']}{url}")
    if out["domain-url"]:
        what.append(f"domain {out['domain-url']}")
    if out["previous-workspace-id"]:
        what.append(f"previous workspace {out['previous-workspace-id']}")
    message = (
        f"could not write the step outputs to {reporter.output_path} (GITHUB_OUTPUT): "
        f"{_reason(exc)}. The {result.flow} flow itself ended with {', '.join(what)}; "
        "later steps that read this step's outputs will not find them"
    )
    if result.status != "success":  # the run failed already, with its own ::error
        reporter.warning(sentence(message), title="Outputs not written")
        return
    result.status = "failed"
    result.message = message
    reporter.error(sentence(message), title="Outputs not written")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
