"""The reference poller for scripts/bench.py: the action with the official CLI's
waiting (a fixed 5 s poll, no end cues). Not part of the action."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesphere_action import steps, waiting
from codesphere_action.main import main

FIXED_5S = waiting.PollPolicy(first=5.0, factor=1.0, cap=5.0, jitter=0.0)

if __name__ == "__main__":
    waiting.Waiter.__init__.__defaults__ = (FIXED_5S, FIXED_5S, None)
    steps.FOLLOW_STEP_LOGS = False
    sys.exit(main())
