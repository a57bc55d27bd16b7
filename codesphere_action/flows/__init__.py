"""The release flows: one module per flow, each with a ``run(ctx)`` that reads top
to bottom like the release it performs; ``specs.py`` is their table.

Nothing is imported here: config reads ``specs`` before any request, and a
flow's module (which pulls in the API client) is imported only when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from .specs import SPECS

if TYPE_CHECKING:
    from ..context import Context

Flow = Callable[["Context"], None]


def load(name: str) -> Flow:
    """The ``run`` function of the flow ``name`` (a key of ``SPECS``)."""
    module = import_module(f"{__name__}.{SPECS[name].module}")
    run: Flow = module.run
    return run
