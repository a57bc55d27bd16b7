"""Container entrypoint: the runner starts this with the inputs in INPUT_* variables."""

import sys
from pathlib import Path

# The runner starts us in the caller's checkout (/github/workspace): find our
# package next to this file, never through the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codesphere_action.main import main

if __name__ == "__main__":
    sys.exit(main())
