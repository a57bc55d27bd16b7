"""The release flows, keyed by the ``flow`` input."""

from __future__ import annotations

from collections.abc import Callable

from ..context import Context
from . import preview, rollback, simple, teardown, zero_downtime

Flow = Callable[[Context], None]

FLOWS: dict[str, Flow] = {
    "simple": simple.release,
    "zero-downtime": zero_downtime.release,
    "preview": preview.release,
    "teardown": teardown.teardown,
    "rollback": rollback.rollback,
}
