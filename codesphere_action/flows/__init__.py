"""The release flows, keyed by the ``flow`` input."""

from __future__ import annotations

from collections.abc import Callable

from ..context import Context
from . import preview, promote, simple, teardown, zero_downtime

Flow = Callable[[Context], None]

FLOWS: dict[str, Flow] = {
    "simple": simple.release,
    "zero-downtime": zero_downtime.release,
    "preview": preview.release,
    "teardown": teardown.teardown,
    # One operation aimed forward (a staged release) or back (the previous one).
    "promote": promote.promote,
    "rollback": promote.promote,
}
