"""A local emulator of the Codesphere public API for end-to-end tests, demos and benchmarks.

    from emulator import Emulator

    with Emulator(token="tok-123") as emu:
        ws_id = emu.add_workspace(team_id=1, name="demo-app")
        ...  # point the action at emu.url

See README.md beside this file.
"""

from .apps import PLACEHOLDER_PHRASES, STICKY_COOKIE, AppBehaviour, AppRequest
from .core import Emulator, Problem, default_branch_head
from .faults import FaultRule
from .model import (
    IDE_SERVER,
    STAGES,
    Domain,
    Event,
    LandscapeDeploy,
    RecordedRequest,
    StageConfig,
    StageRun,
    Workspace,
)
from .spec import SPEC_PATH, Spec, load_spec
from .variants import Variants

__all__ = [
    "IDE_SERVER",
    "PLACEHOLDER_PHRASES",
    "SPEC_PATH",
    "STAGES",
    "STICKY_COOKIE",
    "AppBehaviour",
    "AppRequest",
    "Domain",
    "Emulator",
    "Event",
    "FaultRule",
    "LandscapeDeploy",
    "Problem",
    "RecordedRequest",
    "Spec",
    "StageConfig",
    "StageRun",
    "Variants",
    "Workspace",
    "default_branch_head",
    "load_spec",
]
