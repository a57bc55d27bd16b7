"""Shared fixtures: an emulator that must see only spec-valid requests, a runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import Emulator
from emulator.runner import TOKEN, Runner


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN) as emulator:
        yield emulator
        emulator.assert_clean()  # every request matched the vendored spec


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)
