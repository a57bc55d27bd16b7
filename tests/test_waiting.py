"""The waiting logic with a fake clock: schedule, stale status, failure, timeout."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from codesphere_action.cues import Cue
from codesphere_action.errors import ApiError, TransportError, WaitTimeout
from codesphere_action.models import StageEntry, StageState
from codesphere_action.timings import QUICK, STAGE, Deadline, PollPolicy
from codesphere_action.waiting import (
    Baseline,
    StageTracker,
    Waiter,
    is_active,
)

from .fakes import FakeClock


def entry(
    server: str,
    state: str,
    started: str | None = None,
    steps: list[str] | None = None,
    replica: str = "0",
) -> StageEntry:
    result: dict[str, Any] = {
        "server": server,
        "replica": replica,
        "state": state,
        "steps": [{"state": s} for s in (steps or [])],
    }
    if started:
        result["startedAt"] = started
    return StageEntry.parse(result, "entry")


OLD = "2026-11-26T10:00:00.000Z"
NEW = "2026-11-26T10:05:00.000Z"


# -- the schedule ---------------------------------------------------------------


def within(waiter: Waiter, seconds: float) -> Deadline:
    """The deadline of a wait of ``seconds`` from now, on the waiter's clock."""
    return Deadline.after(seconds, waiter.clock)


def delays(policy: PollPolicy, count: int, seed: int = 1) -> list[float]:
    generator = policy.delays(random.Random(seed))
    return [next(generator) for _ in range(count)]


def test_first_poll_comes_well_under_half_a_second() -> None:
    for seed in range(50):
        assert delays(PollPolicy(), 1, seed)[0] < 0.5


def test_delays_grow_to_the_cap_and_stay_within_jitter() -> None:
    policy = PollPolicy(first=0.25, factor=1.5, cap=3.0, jitter=0.1)
    for seed in range(50):
        values = delays(policy, 30, seed)
        assert all(v <= 3.0 * 1.1 for v in values)
        assert all(v >= 0.25 for v in values)
        assert all(v >= 3.0 for v in values[-10:])  # settled at the cap


def test_jitter_bounds_are_respected() -> None:
    policy = PollPolicy(first=1.0, factor=1.0, cap=1.0, jitter=0.2)
    values = delays(policy, 500)
    assert min(values) >= 1.0  # it only lengthens: never more polls than without jitter
    assert max(values) <= 1.2
    assert max(values) - min(values) > 0.15  # it really jitters


def test_inconsistent_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        PollPolicy(first=5, cap=1)


# -- the poll loop ----------------------------------------------------------------


def test_poll_respects_the_deadline_and_reports_the_last_state() -> None:
    clock = FakeClock()
    waiter = Waiter(clock, PollPolicy(first=0.25, factor=2, cap=4, jitter=0))
    start = clock.now()
    with pytest.raises(WaitTimeout, match=r"stage prepare did not finish within 10\.0 s"):
        waiter.poll(
            lambda _d: None,
            deadline=within(waiter, 10),
            what="stage prepare",
            last_state=lambda: "x",
        )
    assert clock.now() - start == pytest.approx(10)  # never sleeps past the deadline
    assert clock.sleeps[:4] == [0.25, 0.5, 1.0, 2.0]


def test_failing_status_calls_count_against_the_deadline() -> None:
    clock = FakeClock()
    waiter = Waiter(clock, PollPolicy(jitter=0))
    calls = []

    def check(_deadline: Deadline) -> None:
        calls.append(clock.now())
        raise TransportError("GET failed", maybe_landed=True)

    with pytest.raises(WaitTimeout, match="the last status request failed: GET failed"):
        waiter.poll(check, deadline=within(waiter, 5), what="workspace 1 starting")
    assert len(calls) > 2


def test_a_poll_cut_short_by_the_waits_end_is_no_failure_of_the_status_request() -> None:
    """Review 23: a plain timeout said "the last status request failed: ... no time
    left to send it" (the wait's own end); a real failure before that stays the last."""
    clock = FakeClock()
    waiter = Waiter(clock, PollPolicy(jitter=0))

    def out_of_time(_deadline: Deadline) -> None:
        raise TransportError("GET: no time left to send it", maybe_landed=False, out_of_time=True)

    with pytest.raises(WaitTimeout) as plain:
        waiter.poll(out_of_time, deadline=within(waiter, 5), what="stage prepare")
    assert str(plain.value) == "stage prepare did not finish within 5.0 s"
    calls: list[float] = []

    def broke_then_out_of_time(deadline: Deadline) -> None:
        calls.append(clock.now())
        if len(calls) == 1:
            raise TransportError("GET failed: connection broke", maybe_landed=True)
        out_of_time(deadline)

    with pytest.raises(WaitTimeout, match="the last status request failed: GET failed: conn"):
        waiter.poll(broke_then_out_of_time, deadline=within(waiter, 5), what="stage prepare")
    assert len(calls) > 2


def test_non_transient_errors_end_the_wait_at_once() -> None:
    waiter = Waiter(FakeClock(), PollPolicy())

    def check(_deadline: Deadline) -> None:
        raise ApiError("GET", "/x", 404, "Not Found")

    with pytest.raises(ApiError):
        waiter.poll(check, deadline=within(waiter, 60), what="x")


def test_a_cue_wakes_the_wait_at_once() -> None:
    clock = FakeClock()
    cue = threading.Event()
    cue.set()
    waiter = Waiter(clock, cued_policy=PollPolicy(first=2, cap=2, jitter=0))
    results = iter([None, "done"])
    assert (
        waiter.poll(lambda _d: next(results), deadline=within(waiter, 60), what="x", cue=cue)
        == "done"
    )
    assert clock.sleeps == [0.0, 2.0]  # the first sleep was cut short by the cue
    assert not cue.is_set()


# -- recognising our run ----------------------------------------------------------


def test_stale_success_from_the_previous_run_is_not_ours() -> None:
    before = [entry("codesphere-ide", "success", OLD, ["success"]), entry("web", "waiting")]
    tracker = StageTracker("prepare", Baseline.of(before))
    assert tracker.evaluate(before).state == "pending"
    running = [entry("codesphere-ide", "running", NEW, ["running", "waiting"])]
    progress = tracker.evaluate(running)
    assert (progress.state, progress.detail) == ("running", "step 1 of 2 running")
    assert tracker.evaluate([entry("codesphere-ide", "success", NEW)]).state == "success"


def test_failure_names_the_first_failed_step() -> None:
    tracker = StageTracker("test", Baseline.of([]))
    failed = [entry("codesphere-ide", "failure", NEW, ["success", "failure", "waiting"])]
    progress = tracker.evaluate(failed)
    assert (progress.state, progress.failed_step, progress.failed_server) == (
        "failed",
        1,
        "codesphere-ide",
    )


def test_stale_aborted_after_a_stop_is_not_a_failure() -> None:
    before = [entry("web", "running", OLD)]
    tracker = StageTracker("run", Baseline.of(before))
    assert tracker.evaluate([entry("web", "aborted", OLD)]).state == "pending"
    assert tracker.evaluate([entry("web", "running", NEW)]).state == "success"


def test_run_is_up_only_when_every_customer_server_runs() -> None:
    tracker = StageTracker("run", Baseline.of([]))
    entries = [
        entry("codesphere-ide", "waiting"),
        entry("web", "running", NEW),
        entry("api", "waiting", NEW, replica="1"),
    ]
    assert tracker.evaluate(entries).state == "running"
    entries[2] = entry("api", "running", NEW, replica="1")
    assert tracker.evaluate(entries).state == "success"


def test_without_started_at_a_state_change_marks_our_run() -> None:
    before = [entry("codesphere-ide", "success")]
    tracker = StageTracker("prepare", Baseline.of(before))
    assert tracker.evaluate([entry("codesphere-ide", "success")]).state == "pending"
    assert tracker.evaluate([entry("codesphere-ide", "running")]).state == "running"
    assert tracker.evaluate([entry("codesphere-ide", "success")]).state == "success"


# -- the two schedules the action uses --------------------------------------------


def poll_times(policy: PollPolicy, until: float, seed: int) -> list[float]:
    times, now = [], 0.0
    for delay in policy.delays(random.Random(seed)):
        now += delay
        times.append(now)
        if now >= until:
            return times
    raise AssertionError("unreachable")


@pytest.mark.parametrize("policy", [QUICK, STAGE], ids=["quick", "stage"])
def test_both_schedules_poll_first_under_half_a_second_and_never_wait_3_s(
    policy: PollPolicy,
) -> None:
    for seed in range(100):
        values = delays(policy, 40, seed)
        assert values[0] < 0.5
        # The lag when no cue comes (a log stream that stays open) stays under 3 s.
        assert max(values) < 3.0


def test_quick_schedule_notices_a_short_wait_within_a_fraction_of_it() -> None:
    for seed in range(100):
        for end in (1.0, 1.3, 2.0, 3.3):
            times = poll_times(QUICK, end, seed)
            assert times[-1] - end <= 0.35 * end + 0.1


def test_stage_schedule_spends_at_most_12_polls_on_a_20_s_stage() -> None:
    for seed in range(100):
        assert len(poll_times(STAGE, 20.3, seed)) <= 12


def test_waiter_uses_the_relaxed_schedule_only_with_a_cue() -> None:
    clock = FakeClock()
    waiter = Waiter(
        clock, policy=PollPolicy(first=0.1, jitter=0), cued_policy=PollPolicy(first=0.4, jitter=0)
    )
    results = iter([None, "done", None, "done"])
    waiter.poll(lambda _d: next(results), deadline=within(waiter, 5), what="x")
    waiter.poll(
        lambda _d: next(results), deadline=within(waiter, 5), what="x", cue=threading.Event()
    )
    assert clock.sleeps[0] == 0.1
    assert clock.sleeps[2] == 0.4


# -- status variants no document rules out -----------------------------------------


IDE = "codesphere-ide"


def test_a_start_that_resets_the_status_at_once_is_recognised() -> None:
    before = [entry(IDE, "success", OLD, ["success"])]
    tracker = StageTracker("prepare", Baseline.of(before))
    reset = tracker.evaluate([entry(IDE, "waiting", None, ["waiting"])])
    assert (reset.state, reset.seen) == ("running", True)
    assert tracker.evaluate([entry(IDE, "success", None, ["success"])]).state == "success"


def test_nothing_changed_means_no_sign_of_the_run_yet() -> None:
    before = [entry(IDE, "success", None, ["success"]), entry("web", "waiting", None, [])]
    tracker = StageTracker("prepare", Baseline.of(before))
    progress = tracker.evaluate(before)
    assert (progress.state, progress.seen) == ("pending", False)


def test_customer_servers_first_and_pod_replica_ids() -> None:
    before = [
        entry("web", "aborted", OLD, replica="workspace-9-web-58d657cdc5-m8rrp"),
        entry(IDE, "waiting", replica="workspace-9-ide-7c9f-abcde"),
    ]
    tracker = StageTracker("run", Baseline.of(before))
    # The new run's pods have new names; the old pod lingers as aborted.
    coming = [
        entry("web", "aborted", OLD, replica="workspace-9-web-58d657cdc5-m8rrp"),
        entry("web", "waiting", NEW, replica="workspace-9-web-6f7b8c9d0e-q2w3e"),
        entry(IDE, "waiting", replica="workspace-9-ide-7c9f-abcde"),
    ]
    assert tracker.evaluate(coming).state == "running"
    up = [coming[0], entry("web", "running", NEW, replica="workspace-9-web-6f7b8c9d0e-q2w3e")]
    assert tracker.evaluate(up).state == "success"


def test_a_server_still_showing_the_previous_run_holds_the_run_stage_back() -> None:
    before = [entry("web", "aborted", OLD), entry("api", "aborted", OLD)]
    tracker = StageTracker("run", Baseline.of(before))
    half = [entry("web", "running", NEW), entry("api", "aborted", OLD)]
    progress = tracker.evaluate(half)
    assert (progress.state, progress.detail) == ("pending", "waiting for api to start")
    assert tracker.evaluate([half[0], entry("api", "running", NEW)]).state == "success"


@pytest.mark.parametrize("state", ["failure", "aborted"])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_failure_of_our_run_on_any_entry_fails_the_stage(state: str, position: int) -> None:
    before = [
        entry(IDE, "waiting"),
        entry("web", "waiting", replica="0"),
        entry("web", "waiting", replica="1"),
    ]
    tracker = StageTracker("run", Baseline.of(before))
    after = [
        entry(IDE, "waiting"),
        entry("web", "running", NEW, ["success", "running"], replica="0"),
        entry("web", "running", NEW, ["success", "running"], replica="1"),
    ]
    after[position] = entry(
        after[position].server, state, NEW, ["success", state], replica=after[position].replica
    )
    progress = tracker.evaluate(list(reversed(after)))
    assert (progress.state, progress.failed_step) == ("failed", 1)
    assert progress.failed_server == after[position].server


def test_without_timestamps_a_late_aborted_is_the_previous_run_ending() -> None:
    # The stop (or the replacement by our start) shows late: "aborted" without
    # startedAt is never taken for our run.
    before = [entry("web", "waiting", None, ["success", "waiting"])]
    tracker = StageTracker("run", Baseline.of(before))
    progress = tracker.evaluate([entry("web", "aborted", None, ["success", "aborted"])])
    assert (progress.state, progress.seen) == ("pending", False)
    assert tracker.evaluate([entry("web", "running", None, ["success", "running"])]).state == (
        "success"
    )


def test_a_run_stage_with_no_customer_server_is_not_up() -> None:
    tracker = StageTracker("run", Baseline.of([entry(IDE, "waiting")]))
    progress = tracker.evaluate([entry(IDE, "running", NEW)])
    assert (progress.state, progress.servers) == ("pending", False)


def test_idle_customer_entries_without_steps_do_not_matter_to_prepare() -> None:
    before = [entry("web", "waiting", None, []), entry(IDE, "success", OLD, ["success"])]
    tracker = StageTracker("prepare", Baseline.of(before))
    after = [entry("web", "waiting", None, []), entry(IDE, "success", NEW, ["success"])]
    assert tracker.evaluate(after).state == "success"


def test_a_poll_a_cue_brought_forward_leaves_the_schedule_where_it_was() -> None:
    clock = FakeClock()
    cue = threading.Event()
    waiter = Waiter(clock, cued_policy=PollPolicy(first=1, factor=2, cap=8, jitter=0))
    results = iter([None, None, None, "done"])

    def check(_deadline: Deadline) -> str | None:
        if len(clock.sleeps) == 1:
            cue.set()  # the first poll sees a step end: the next sleep is cut short
        return next(results)

    assert waiter.poll(check, deadline=within(waiter, 60), what="x", cue=cue) == "done"
    assert clock.sleeps == [1.0, 0.0, 2.0, 4.0]  # the cued poll did not use up the 2 s


def test_a_wrong_cue_takes_the_place_of_a_scheduled_poll() -> None:
    clock = FakeClock()
    cue = threading.Event()
    waiter = Waiter(clock, cued_policy=PollPolicy(first=1, factor=2, cap=8, jitter=0))
    results = iter([None, None, None, "done"])

    def check(_deadline: Deadline) -> str | None:
        if len(clock.sleeps) == 1:
            cue.set()
        return next(results)

    waiter.poll(check, deadline=within(waiter, 60), what="x", cue=cue, false_cue=lambda: True)
    assert clock.sleeps == [1.0, 0.0, 4.0, 8.0]  # no poll more than the schedule's


def test_a_replica_still_showing_the_previous_run_holds_the_run_stage_back() -> None:
    before = [entry("web", "aborted", OLD, replica="0"), entry("web", "aborted", OLD, replica="1")]
    tracker = StageTracker("run", Baseline.of(before))
    half = [entry("web", "running", NEW, replica="0"), entry("web", "aborted", OLD, replica="1")]
    assert tracker.evaluate(half).state == "pending"
    both = [half[0], entry("web", "running", NEW, replica="1")]
    assert tracker.evaluate(both).state == "success"


def test_a_run_stage_whose_servers_exit_fails() -> None:
    tracker = StageTracker("run", Baseline.of([entry("web", "waiting")]))
    progress = tracker.evaluate([entry("web", "success", NEW, ["success", "success"])])
    assert (progress.state, progress.detail) == (
        "failed",
        "ended (its servers exited) instead of staying up",
    )


def test_without_timestamps_a_waiting_entry_whose_steps_began_is_in_progress() -> None:
    assert is_active(entry("web", "waiting", None, ["success", "running"]))
    assert not is_active(entry("web", "waiting", None, ["waiting", "waiting"]))
    assert not is_active(entry("web", "waiting", None, []))
    assert not is_active(entry("web", "aborted", None, ["success", "aborted"]))


def test_a_cue_set_before_the_last_poll_began_brings_no_poll() -> None:
    clock = FakeClock()
    cue = Cue()
    waiter = Waiter(clock, cued_policy=PollPolicy(first=1, factor=2, cap=8, jitter=0))
    results = iter([None, None, "done"])

    def check(_deadline: Deadline) -> str | None:
        if len(clock.sleeps) == 1:
            cue.fire(clock.now() - 0.5)  # a stream end the poll in progress already sees
        return next(results)

    assert waiter.poll(check, deadline=within(waiter, 60), what="x", cue=cue) == "done"
    assert clock.sleeps == [1.0, 0.0, 2.0, 4.0]  # the stale cue was skipped, not polled


# -- states the spec does not list (issue 17) -----------------------------------


def test_a_state_the_spec_does_not_list_is_read_and_named() -> None:
    pending = entry("web", "pending", steps=["skipped", "pending"])
    assert pending.state is StageState.UNLISTED and pending.raw_state == "pending"
    assert [step.raw_state for step in pending.steps] == ["skipped", "pending"]
    assert pending.unlisted_states() == {
        ("entry", "pending"),
        ("step", "skipped"),
        ("step", "pending"),
    }
    assert entry("web", "running", steps=["success"]).unlisted_states() == set()


def test_an_unlisted_entry_state_is_not_finished_and_a_skipped_step_not_failed() -> None:
    # Like "waiting": in progress once it began, idle otherwise.
    assert not is_active(entry("web", "pending"))
    assert is_active(entry("web", "pending", started=NEW))
    before = [entry("codesphere-ide", "success", OLD, ["success", "success"])]
    tracker = StageTracker("prepare", Baseline.of(before))
    queued = tracker.evaluate([entry("codesphere-ide", "queued", NEW, ["pending", "pending"])])
    assert queued.state == "running" and queued.seen
    done = tracker.evaluate([entry("codesphere-ide", "success", NEW, ["success", "skipped"])])
    assert done.state == "success"
    run = StageTracker("run", Baseline.of([]))
    up = run.evaluate([entry("codesphere-ide", "pending"), entry("web", "pending", NEW)])
    assert up.state == "running"
    assert up.detail == "0 of 1 server replicas running; 1 pending"


# -- the baseline across the reads before a start (issue 20) -----------------------------
IDLE_IDE = entry("codesphere-ide", "waiting")


@pytest.mark.parametrize("started", [OLD, None], ids=["timestamps", "no_timestamps"])
def test_the_stopped_runs_entries_back_after_a_deploy_gap_are_not_ours(
    started: str | None,
) -> None:
    """Stop, deploy (no customer server listed), start: the stopped run's entries
    come back before the new run shows; they are the previous run's."""
    running = [IDLE_IDE, entry("web", "running", started, ["success", "running"])]
    stopped = [IDLE_IDE, entry("web", "aborted", started, ["success", "aborted"])]
    tracker = StageTracker("run", Baseline.of(running, stopped, [IDLE_IDE]))
    assert tracker.evaluate([IDLE_IDE]).state == "pending"
    back = tracker.evaluate(stopped)
    assert (back.state, back.seen) == ("pending", False)
    new = [IDLE_IDE, entry("web", "waiting", NEW if started else None, ["running", "waiting"])]
    progress = tracker.evaluate(new)
    assert (progress.state, progress.detail, progress.seen) == (
        "running",
        "0 of 1 server replicas running",
        True,
    )
    up = [IDLE_IDE, entry("web", "running", NEW if started else None, ["success", "running"])]
    assert tracker.evaluate(up).state == "success"


def test_a_later_read_of_an_entry_wins_over_an_earlier_one() -> None:
    baseline = Baseline.of([entry("web", "running", OLD)], [entry("web", "aborted", OLD)])
    assert baseline.entries[("web", "0")].state == "aborted"
    assert Baseline.of().entries == {}


def test_the_new_runs_own_abort_after_a_deploy_gap_fails_the_stage() -> None:
    stopped = [IDLE_IDE, entry("web", "aborted", OLD, ["success", "aborted"])]
    tracker = StageTracker("run", Baseline.of(stopped, [IDLE_IDE]))
    assert tracker.evaluate([IDLE_IDE, entry("web", "waiting", NEW, ["running"])]).seen
    failed = tracker.evaluate([IDLE_IDE, entry("web", "aborted", NEW, ["aborted"])])
    assert (failed.state, failed.detail) == (
        "failed",
        "was aborted at step 1 of 1 on web (replica 0)",
    )


# -- which run-stage log a failure reads (issue 20) -------------------------------------
def test_servers_that_exit_name_the_server_and_its_last_step() -> None:
    tracker = StageTracker("run", Baseline.of([]))
    pod = "workspace-7-web-0123456789-abcde"
    entries = [entry("codesphere-ide", "waiting"), entry("web", "success", NEW, ["success"] * 2,
               replica=pod)]  # fmt: skip
    progress = tracker.evaluate(entries)
    assert (progress.failed_server, progress.failed_step) == ("web", 1)
    assert (progress.failed_replica, progress.replica_unique) == (pod, True)


def test_an_index_replica_id_names_no_single_entry() -> None:
    tracker = StageTracker("run", Baseline.of([]))
    entries = [
        entry("codesphere-ide", "waiting"),
        entry("web", "running", NEW, ["success", "running"]),
        entry("worker", "failure", NEW, ["success", "failure"]),
    ]
    progress = tracker.evaluate(entries)
    assert (progress.failed_server, progress.failed_step, progress.failed_replica) == (
        "worker",
        1,
        "0",
    )
    assert not progress.replica_unique  # "0" is every server's (and the IDE's)
