"""The mark (steps/ownership.py): what it records, how old marks read, and the one
wall-clock reading of a run that orders releases (issue 21)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from functools import cmp_to_key
from pathlib import Path

from codesphere_action import main as main_module
from codesphere_action.clock import utc_stamp
from codesphere_action.context import Context
from codesphere_action.steps.ownership import Mark, Start, compare_starts, shared_marks
from codesphere_action.steps.pruning import format_age
from emulator.runner import parse_outputs


def test_a_mark_round_trips_with_its_route_and_start() -> None:
    mark = Mark(
        "acme/shop",
        "zero-downtime",
        "4711.1",
        commit="4b825dc642cb",
        nonce="9f86d081",
        started="2026-12-03T17:04:05.123Z",
        domain="shop.example.com",
        path="/api",
        app="shop-api",
    )
    text = mark.render()
    assert text == (
        "repo=acme/shop flow=zero-downtime run=4711.1 commit=4b825dc642cb app=shop-api "
        "domain=shop.example.com path=/api state=building started=2026-12-03T17:04:05.123Z "
        "id=9f86d081"
    )
    assert Mark.parse(text) == mark
    assert mark.route == "shop.example.com/api"


def test_an_earlier_versions_mark_has_no_start_and_no_route() -> None:
    old = Mark.parse("repo=acme/shop flow=zero-downtime run=1.1 commit=4b825dc642cb state=released")
    assert old is not None
    assert (old.started, old.domain, old.path, old.route, old.app) == ("", "", "", "", "")
    # A start that is not the action's own form is no start.
    odd = Mark.parse("repo=acme/shop flow=preview run=1.1 started=yesterday pr=3")
    assert odd is not None and odd.started == ""


def test_a_mark_without_a_start_is_older_than_any_with_one() -> None:
    """Within one workflow run (or without run ids), the later start is newer."""
    new = Mark("acme/shop", "zero-downtime", "2.1", started="2026-12-03T17:04:05.124Z")
    old = Mark("acme/shop", "zero-downtime", "2.1")
    assert new.newer_than(Start("2.1", "2026-12-03T17:04:05.123Z"))
    assert not new.newer_than(Start("2.1", "2026-12-03T17:04:05.124Z"))  # the same moment
    assert not new.newer_than(Start("2.1", "2026-12-03T17:04:06.000Z"))
    assert new.newer_than(
        Start("2.1", "")
    )  # this release's own mark has none: an earlier version's
    assert not old.newer_than(Start("2.1", "2026-12-03T17:04:05.123Z"))
    assert not old.newer_than(Start("2.1", ""))
    local = Mark("acme/shop", "zero-downtime", "local-1a2b", started="2026-12-03T17:04:07.000Z")
    assert local.newer_than(Start("2.1", "2026-12-03T17:04:06.000Z"))  # no run id: the start


def test_the_later_workflow_run_is_the_newer_release_whatever_the_start() -> None:
    """GitHub hands run ids out as runs are created, across workflows: a re-run of
    an older run's job (same id, a later attempt, a later start) is still older
    than a release of a run created after it."""
    newer_run = Mark("acme/shop", "zero-downtime", "101.1", started="2026-12-03T17:00:00.000Z")
    rerun_of_older = Start("100.2", "2026-12-03T17:30:00.000Z")
    assert newer_run.newer_than(rerun_of_older)
    assert not Mark("acme/shop", "zero-downtime", "100.2", started=rerun_of_older.at).newer_than(
        Start("101.1", "2026-12-03T17:00:00.000Z")
    )


def test_utc_stamp_has_milliseconds_and_sorts_as_time_does() -> None:
    moment = datetime(2026, 12, 3, 18, 4, 5, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert utc_stamp(moment) == "2026-12-03T17:04:05.123Z"
    stamps = [utc_stamp(moment + timedelta(milliseconds=n)) for n in (1, 10, 1000, 3_600_000)]
    assert stamps == sorted(stamps)


def test_main_reads_the_start_once_and_it_can_be_injected(tmp_path: Path) -> None:
    seen: list[str] = []

    def flow(ctx: Context) -> None:
        seen.append(ctx.config.run.started)

    output = tmp_path / "output"
    code = main_module.main(
        {
            "INPUT_API-TOKEN": "tok-marks-unit",
            "INPUT_API-URL": "http://127.0.0.1:9/api",
            "INPUT_WORKSPACE-ID": "1",
            "GITHUB_OUTPUT": str(output),
        },
        io.StringIO(),
        flows={"simple": flow},
        started=datetime(2026, 12, 3, 17, 4, 5, 123000, tzinfo=UTC),
    )
    assert code == 0
    assert seen == ["2026-12-03T17:04:05.123Z"]
    assert parse_outputs(output.read_text())["status"] == "success"


def test_prune_words_an_age_in_its_largest_sensible_unit() -> None:
    assert [format_age(s) for s in (30, 600, 5400, 7200, 86400, 2 * 86400, 10 * 86400)] == [
        "less than a minute",
        "10 min",
        "90 min",
        "2 h",
        "24 h",
        "2 days",
        "10 days",
    ]


def test_releases_rank_as_the_superseded_rule_orders_them() -> None:
    """compare_starts, which prune sorts with, is ``Start.after``: run ids first,
    whatever the clock says; the start within one run."""
    late_job = Start("310.1", "2026-12-03T16:00:00.000Z")  # created later, started earlier
    serving = Start("300.1", "2026-12-03T17:00:00.000Z")
    retry = Start("300.2", "2026-12-03T17:30:00.000Z")
    ranked = sorted([serving, late_job, retry], key=cmp_to_key(compare_starts), reverse=True)
    assert ranked == [late_job, retry, serving]
    assert compare_starts(serving, Start("300.1", serving.at)) == 0


def test_a_mark_id_carried_twice_is_shared_and_twins_of_one_name_may_be_told_apart() -> None:
    one = Mark("acme/shop", "zero-downtime", "3.1", nonce="9f86d081")
    other = Mark("acme/shop", "zero-downtime", "4.1", nonce="0badc0de")
    marks = {1: one, 2: one, 3: other, 4: None, 5: Mark("acme/shop", "preview", "5.1")}
    assert shared_marks(marks) == {1: [1, 2], 2: [1, 2]}
    assert shared_marks(marks, {1: "shop-a", 2: "shop-a"}) == {}  # twins of one create
    assert shared_marks(marks, {1: "shop-a", 2: "debug"}) == {1: [1, 2], 2: [1, 2]}
