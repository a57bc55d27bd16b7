"""The step-end cue: set when a step's log stream ends, each step followed once."""

from __future__ import annotations

import threading

import responses

from codesphere_action.client import Client
from codesphere_action.cues import StepFollower, running_step

from .fakes import FakeClock, capture_reporter

API = "https://codesphere.com/api"


def test_running_step_is_the_first_unfinished_one() -> None:
    entry = {"steps": [{"state": "success"}, {"state": "running"}, {"state": "waiting"}]}
    assert running_step(entry) == 1
    assert running_step({"steps": [{"state": "success"}]}) is None


@responses.activate
def test_cue_is_set_when_the_stream_ends_and_each_step_is_followed_once() -> None:
    url = f"{API}/workspaces/3/logs/prepare/0"
    responses.get(url, body='event: data\ndata: [{"kind":"I","data":"x"}]\n\n')
    reporter, _ = capture_reporter()
    client = Client(API, "tok-cue-1234", reporter=reporter, clock=FakeClock())
    cue = threading.Event()
    follower = StepFollower(client, 3, "prepare", cue, timeout=5)
    follower.follow(0)
    assert cue.wait(5)
    cue.clear()
    follower.follow(0)  # already followed: no second stream
    follower.stop()
    assert len(responses.calls) == 1
    assert not cue.is_set()


@responses.activate
def test_a_failing_stream_still_cues_a_poll() -> None:
    responses.get(f"{API}/workspaces/3/logs/test/1", status=500)
    reporter, _ = capture_reporter()
    client = Client(API, "tok-cue-1234", reporter=reporter, clock=FakeClock())
    cue = threading.Event()
    StepFollower(client, 3, "test", cue, timeout=5).follow(1)
    assert cue.wait(5)
