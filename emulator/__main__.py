"""Run the emulator by hand: ``python -m emulator --workspace demo-app``.

Prints one JSON line ``{"url", "second_url", "token", "team_id", "workspaces": [...],
"domain"}`` and serves until SIGINT/SIGTERM. ``--verbose`` logs each request to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from .core import Emulator
from .model import RecordedRequest


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--token", default="tok-123")
    parser.add_argument("--team", type=int, default=1, help="team id of the workspaces")
    parser.add_argument(
        "--workspace", action="append", default=[], metavar="NAME", help="create a workspace"
    )
    parser.add_argument(
        "--asleep", action="store_true", help="create the workspaces asleep (on demand)"
    )
    parser.add_argument(
        "--domain", help="create this domain with '/' connected to the first workspace"
    )
    parser.add_argument("--workspace-start-seconds", type=float, default=3.0)
    parser.add_argument("--start-latency", type=float, default=1.0)
    parser.add_argument("--prepare-seconds", type=float, default=4.0)
    parser.add_argument("--test-seconds", type=float, default=3.0)
    parser.add_argument("--run-seconds", type=float, default=3.0)
    parser.add_argument("--fail-prepare-step", type=int, help="prepare fails at this step")
    parser.add_argument("--second-listener", action="store_true", help="open the other port")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return parser.parse_args(argv)


def _log(rec: RecordedRequest) -> None:
    fault = f" [{rec.fault}]" if rec.fault else ""
    print(f"{rec.method} {rec.raw_path} -> {rec.status}{fault}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Emulator(
        token=args.token,
        host=args.host,
        port=args.port,
        workspace_start_seconds=args.workspace_start_seconds,
        start_latency=args.start_latency,
        stage_seconds={
            "prepare": args.prepare_seconds,
            "test": args.test_seconds,
            "run": args.run_seconds,
        },
        on_request=_log if args.verbose else None,
    ) as emu:
        if args.fail_prepare_step is not None:
            emu.defaults_for_new_workspaces(
                stages={"prepare": {"fail_step": args.fail_prepare_step}}
            )
        ids = [
            emu.add_workspace(team_id=args.team, name=name, running=not args.asleep)
            for name in args.workspace
        ]
        if args.domain:
            emu.add_domain(args.team, args.domain, {"/": ids[:1]})
        info = {
            "url": emu.url,
            "second_url": emu.second_url if args.second_listener else None,
            "token": args.token,
            "team_id": args.team,
            "workspaces": [{"id": i, "name": n} for i, n in zip(ids, args.workspace, strict=True)],
            "domain": args.domain,
        }
        print(json.dumps(info), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
