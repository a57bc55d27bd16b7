"""The bake's schedule and rule against canned answers, on a fake clock (no
sleeping): rounds every 5 s, the recheck 1 s after a failed answer, a blip
forgiven, two failures within three rounds undone; the timeline bounded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses

from codesphere_action.api.codesphere import Codesphere
from codesphere_action.api.transport import Transport
from codesphere_action.config import load_config
from codesphere_action.context import Context, Result
from codesphere_action.errors import ActionError, BakeFailed, Superseded
from codesphere_action.models import Workspace
from codesphere_action.signals import CancelGuard
from codesphere_action.steps.bake import bake
from codesphere_action.steps.creation import State
from codesphere_action.timeline import MAX_ROWS, Round, Timeline
from codesphere_action.waiting import Waiter

from .fakes import FakeClock, capture_reporter

API = "https://api.codesphere.test/api"
MAP = f"{API}/domains/team/7/domain/shop.example.com"
DEV = "1003-3000.dc2.codesphere.test"
OLD, NEW, NEWER = 1001, 1003, 1009


def context(bake_time: str, clock: FakeClock) -> Context:
    config = load_config(
        {
            "INPUT_API-TOKEN": "tok",
            "INPUT_API-URL": API,
            "INPUT_FLOW": "canary",
            "INPUT_TEAM-ID": "7",
            "INPUT_PLAN-ID": "8",
            "INPUT_DOMAIN": "shop.example.com",
            "INPUT_HEALTH-CHECK-PATH": "/healthz",
            "INPUT_BAKE-TIME": bake_time,
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_SHA": "c" * 40,
            "GITHUB_REF_NAME": "main",
        }
    )
    reporter, _log = capture_reporter()
    client = Codesphere(Transport(API, "tok", reporter=reporter, clock=clock))
    return Context(
        config, client, reporter, clock, Waiter(clock), CancelGuard(clock.now), Result("canary")
    )


def joined(ctx: Context) -> State:
    state = State.for_run(ctx)
    state.path, state.targets, state.previous, state.switched = "/", [OLD, NEW], [OLD], True
    return state


def serve(
    clock: FakeClock,
    dev: Callable[[float], int],
    domain: Callable[[float], int],
    current: dict[str, list[int]] | None = None,
) -> Any:
    """The map (``current``, by default both on /), the dev domain and the domain
    answering by the time since the start; returns the list of (time, what) each
    request came at."""
    start, seen = clock.now(), []
    current = {"/": [OLD, NEW]} if current is None else current

    def answer(what: str, status: Callable[[float], int]) -> Any:
        def reply(_request: Any) -> tuple[int, dict[str, str], str]:
            seen.append((round(clock.now() - start, 3), what))
            return status(clock.now() - start), {}, "ok"

        return reply

    def domain_map() -> tuple[int, dict[str, str], str]:
        body = json.dumps({"name": "shop.example.com", "workspaces": current})
        return 200, {"Content-Type": "application/json"}, body

    def read_map(_request: Any) -> tuple[int, dict[str, str], str]:
        seen.append((round(clock.now() - start, 3), "map"))
        return domain_map()

    def write_map(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append((round(clock.now() - start, 3), f"put {request.body.decode()}"))
        current.clear()
        current.update(json.loads(request.body))
        return domain_map()

    responses.add_callback("GET", MAP, callback=read_map)
    responses.add_callback("PUT", f"{MAP}/workspace-connections", callback=write_map)
    responses.add_callback("GET", f"https://{DEV}/healthz", callback=answer("dev", dev))
    responses.add_callback(
        "GET", "https://shop.example.com/healthz", callback=answer("domain", domain)
    )
    return seen


def ok(_at: float) -> int:
    return 200


def workspace() -> Workspace:
    return Workspace(NEW, "shop-ccccccc", 7, DEV, 1)


def times(seen: list[tuple[float, str]], what: str) -> list[float]:
    return [at for at, kind in seen if kind == what]


@responses.activate
def test_a_clean_bake_checks_every_5_s_until_bake_time_then_completes() -> None:
    clock = FakeClock()
    ctx = context("20s", clock)
    state = joined(ctx)
    seen = serve(clock, ok, ok)
    bake(ctx, state, workspace(), complete=True)
    assert times(seen, "dev") == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert times(seen, "map") == [0.0, 5.0, 10.0, 15.0, 20.0, 20.0]  # the last: the completion
    assert len(times(seen, "domain")) == 10  # one per workspace on the path, each round
    assert seen[-1] == (20.0, 'put {"/": [1003]}')
    assert state.targets == [NEW] and state.switched
    assert ctx.result.bake is not None
    assert ctx.result.bake.decision == "passed after 20.0 s: completed, / -> 1003 alone"


@responses.activate
def test_a_blip_is_rechecked_after_a_second_and_forgiven() -> None:
    clock = FakeClock()
    ctx = context("20s", clock)
    state = joined(ctx)
    seen = serve(clock, lambda at: 503 if at == 5.0 else 200, ok)
    bake(ctx, state, workspace(), complete=False)
    assert times(seen, "dev") == [0.0, 5.0, 6.0, 11.0, 16.0, 20.0]
    assert ctx.result.bake is not None
    assert [r.note for r in ctx.result.bake.rounds] == ["", "a blip", "", "", "", ""]


@responses.activate
def test_blips_three_rounds_apart_are_each_forgiven() -> None:
    clock = FakeClock()
    ctx = context("30s", clock)
    state = joined(ctx)
    serve(clock, lambda at: 503 if at in (0.0, 11.0) else 200, ok)
    bake(ctx, state, workspace(), complete=False)  # rounds 0 (blip), 1, 6, 11 (blip): passes


@responses.activate
def test_an_app_that_fails_is_undone_a_second_after_its_first_failed_check() -> None:
    clock = FakeClock()
    ctx = context("60s", clock)
    state = joined(ctx)
    seen = serve(clock, lambda at: 500 if at >= 12.3 else 200, ok)
    with pytest.raises(BakeFailed, match=r"the dev domain gave 2 answers .* within 2 rounds"):
        bake(ctx, state, workspace(), complete=True)
    assert times(seen, "dev") == [0.0, 5.0, 10.0, 15.0, 16.0]
    assert seen[-1] == (16.0, 'put {"/": [1001]}')  # the previous list restored
    assert state.switched_back and not state.switched


@responses.activate
def test_a_failing_domain_counts_each_of_its_answers() -> None:
    """Through the domain each round sends one request per workspace on the
    path; here every other one fails (the canary's, in turn)."""
    clock = FakeClock()
    ctx = context("60s", clock)
    state = joined(ctx)
    answers = iter([200, 200, 200, 502, 200, 502])
    serve(clock, ok, lambda _at: next(answers))
    with pytest.raises(BakeFailed, match=r"https://shop.example.com/ gave 2 answers .* 2 rounds"):
        bake(ctx, state, workspace(), complete=True)
    assert ctx.result.bake is not None
    assert [r.at for r in ctx.result.bake.rounds] == [0.0, 5.0, 6.0]


@responses.activate
def test_the_map_changed_by_someone_else_stops_the_bake_and_writes_nothing() -> None:
    clock = FakeClock()
    ctx = context("60s", clock)
    state = joined(ctx)
    seen = serve(clock, ok, ok)
    responses.replace(
        responses.GET,
        MAP,
        json={"name": "shop.example.com", "workspaces": {"/": [OLD]}},
    )
    with pytest.raises(ActionError, match="was changed by someone else during the bake"):
        bake(ctx, state, workspace(), complete=True)
    assert not [kind for _at, kind in seen if kind.startswith("put")]
    assert not state.switched and "left as another change set it" in state.domain_note


@responses.activate
def test_a_newer_release_on_the_path_at_the_completion_supersedes_the_bake() -> None:
    """A later run's zero-downtime switched the path right after the last round:
    the completion reads the map, finds that newer release, writes nothing and
    ends superseded (exit code 0), as a run whose switch comes too late does."""
    clock = FakeClock()
    ctx = context("5s", clock)
    state = joined(ctx)
    current = {"/": [OLD, NEW]}

    def dev(at: float) -> int:
        if at >= 5.0:  # the last round: the newer release switches right after it
            current["/"] = [NEWER]
        return 200

    seen = serve(clock, dev, ok, current)
    newer = (
        "repo=acme/shop flow=zero-downtime run=9.1 commit=999999999999 state=released "
        "started=2999-01-01T00:00:00.000Z"
    )
    responses.get(
        f"{API}/workspaces/{NEWER}/env-vars",
        json=[{"name": "CODESPHERE_RELEASE", "value": newer}],
    )
    responses.get(f"{API}/workspaces/{NEWER}", status=404)
    with pytest.raises(Superseded, match=f"a newer release serves .*: workspace {NEWER}"):
        bake(ctx, state, workspace(), complete=True)
    assert not [kind for _at, kind in seen if kind.startswith("put")]
    assert not state.switched and not state.settled
    assert ctx.result.bake is not None
    assert "a newer release of this repository (workspace 1009, run 9.1)" in (
        ctx.result.bake.decision
    )


def test_the_timeline_is_bounded_whatever_bake_time_is() -> None:
    timeline = Timeline(6 * 3600.0, 5.0, through="GET https://shop.example.com/healthz")
    for index in range(6000):
        failing = index % 7 == 0
        note = "a blip" if failing else ""
        timeline.add(
            Round(index * 3.6, "503 Service Unavailable" if failing else "", 2, 2, "", note)
        )
    rows = timeline.rows()
    assert len(rows) == MAX_ROWS
    assert "rows left out" in rows[8][1]
    text = "\n".join(timeline.markdown(lambda s: s.replace("|", "\\|")))
    assert len(text.encode()) < 8 * 1024
    assert (
        "6000 rounds of checks (times from the bake's start, m:ss), 858 with an answer that "
        "was not accepted"
    ) in text


def test_the_timeline_redacts_before_it_cuts() -> None:
    """A cell is cut to 120 characters, the decision to 600: a secret across
    either cut is replaced first, so no part of it is left."""
    secret = "s3cr3t-value-0123456789"
    timeline = Timeline(60.0, 5.0)
    timeline.add(Round(5.0, f"503 {'x' * 108}{secret}", note="a blip"))
    timeline.decide(f"failed after 6.0 s: {'y' * 570}{secret}")
    text = "\n".join(timeline.markdown(lambda s: s, lambda s: s.replace(secret, "***")))
    assert secret[:4] not in text
    assert f"503 {'x' * 108}***" in text
    unredacted = timeline.markdown(lambda s: s)  # what a cut before the redaction left
    assert f"{secret[:5]}…" in unredacted[6] and f"{secret[:9]}…" in unredacted[-2]


@responses.activate
def test_map_reads_that_fail_never_push_the_last_round_past_bake_time() -> None:
    """The review's case: every map read answers 503. A read is tried once (the
    next round reads again), so it costs no retries' time; the last round comes
    when bake-time is over, and the timeline shows each read that failed."""
    clock = FakeClock()
    ctx = context("6s", clock)
    state = joined(ctx)
    seen = serve(clock, ok, ok)
    responses.replace(
        responses.GET, MAP, status=503, json={"status": 503, "title": "Service Unavailable"}
    )
    start = clock.now()
    bake(ctx, state, workspace(), complete=False)
    assert times(seen, "dev") == [0.0, 5.0, 6.0]
    assert clock.now() - start == 6.0
    assert (
        len([c for c in responses.calls if c.request.method == "GET" and c.request.url == MAP]) == 3
    )
    assert ctx.result.bake is not None
    rounds = ctx.result.bake.rounds
    assert [r.at for r in rounds] == [0.0, 5.0, 6.0]
    assert all(r.note == "map not read: 503 Service Unavailable" for r in rounds), rounds
    text = "\n".join(ctx.result.bake.markdown(lambda s: s))
    assert "| 0:06 | ✅ | ✅ 2 of 2 | map not read: 503 Service Unavailable |" in text


@responses.activate
def test_a_round_the_end_of_bake_time_cuts_off_leaves_its_checks_to_the_last() -> None:
    """A slow map read (2.5 s) in the round due at 5 s of a 6 s bake: the bake's
    end comes before that round's health checks, which are not sent (nor
    counted); the last round, due at the end, checks at once."""
    clock = FakeClock()
    ctx = context("6s", clock)
    state = joined(ctx)
    seen = serve(clock, ok, ok)
    start = clock.now()

    def slow_map(_request: Any) -> tuple[int, dict[str, str], str]:
        if clock.now() - start == 5.0:
            clock.time += 2.5
        body = json.dumps({"name": "shop.example.com", "workspaces": {"/": [OLD, NEW]}})
        return 200, {"Content-Type": "application/json"}, body

    responses.remove(responses.GET, MAP)  # serve's reader
    responses.add_callback("GET", MAP, callback=slow_map)
    bake(ctx, state, workspace(), complete=False)
    assert times(seen, "dev") == [0.0, 7.5]
    assert ctx.result.bake is not None
    rounds = ctx.result.bake.rounds
    assert [r.at for r in rounds] == [0.0, 5.0, 7.5]
    assert not rounds[1].dev_checked and rounds[1].domain_total == 0
    assert rounds[1].note == "cut off by the end of bake-time: not checked"
    assert rounds[2].dev_checked and rounds[2].domain_total == 2
    assert ctx.result.bake.decision == "passed after 6.0 s: the switch stands"
