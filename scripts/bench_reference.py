"""The reference poller for scripts/bench.py: the action with the official CLI's
waiting (a fixed 5 s poll, no end cues). Not part of the action."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesphere_action.main import main
from codesphere_action.timings import PollPolicy, Tuning

FIXED_5S = PollPolicy(first=5.0, factor=1.0, cap=5.0, jitter=0.0)
REFERENCE = Tuning(quick=FIXED_5S, stage=FIXED_5S, follow_step_logs=False)

if __name__ == "__main__":
    sys.exit(main(tuning=REFERENCE))
