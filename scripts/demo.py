"""Run a real release against the local Codesphere emulator and show what a runner shows.

    python scripts/demo.py [simple|zero-downtime]

Starts the emulator on 127.0.0.1, runs entrypoint.py as a subprocess the way the
runner does (INPUT_* variables, a GITHUB_OUTPUT file, an unrelated working
directory), streams its log, then prints the outputs and the job summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import Emulator  # noqa: E402

TOKEN = "demo-token-not-a-secret"


def main(flow: str) -> int:
    with Emulator(token=TOKEN, stage_seconds={"prepare": 1.5, "test": 1.0, "run": 0.8}) as emu:
        live = emu.add_workspace(team_id=1, name="demo-app")
        emu.add_domain(1, "demo.example.com", {"/": [live]})
        inputs = {"api-token": TOKEN, "api-url": emu.url, "flow": flow, "test": "true"}
        if flow == "simple":
            inputs["workspace-id"] = str(live)
        else:
            inputs.update({"team-id": "1", "plan-id": "8", "domain": "demo.example.com"})
        with tempfile.TemporaryDirectory() as tmp:
            output, summary = Path(tmp, "output"), Path(tmp, "summary")
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_REPOSITORY": "example/demo-app",
                "GITHUB_SHA": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "GITHUB_REF_NAME": "main",
                "GITHUB_SERVER_URL": "https://github.com",
                **{f"INPUT_{name.upper()}": value for name, value in inputs.items()},
            }
            print(f"Codesphere emulator at {emu.url}; releasing with flow={flow}\n", flush=True)
            code = subprocess.call([sys.executable, str(ROOT / "entrypoint.py")], cwd=tmp, env=env)
            print("\n--- outputs (GITHUB_OUTPUT) ---")
            print(output.read_text().strip())
            print("\n--- job summary (GITHUB_STEP_SUMMARY) ---")
            print(summary.read_text().strip())
        emu.assert_clean()
    return code


if __name__ == "__main__":
    chosen = sys.argv[1] if len(sys.argv) > 1 else "simple"
    if chosen not in ("simple", "zero-downtime"):
        sys.exit(f"usage: {sys.argv[0]} [simple|zero-downtime]")
    sys.exit(main(chosen))
