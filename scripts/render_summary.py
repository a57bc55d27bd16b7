"""Render the job summary of real releases as GitHub shows it, for docs/.

    .venv/bin/python scripts/render_summary.py   # writes docs/summary.html and docs/summary.png

Runs a successful zero-downtime release and a failing simple release against
the emulator (entrypoint.py as a subprocess, as a runner does), renders the
Markdown they append to GITHUB_STEP_SUMMARY to HTML with GitHub-like styling,
and screenshots the page with headless Chromium (Debian's `chromium`; with
`fonts-noto-color-emoji`, or the status emoji show as boxes).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import markdown

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import Emulator  # noqa: E402
from emulator.runner import SHA, Runner  # noqa: E402

TOKEN = "render-token"  # the emulator accepts any token it is given
CSS = """
body { font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
       color: #1f2328; background: #f6f8fa; margin: 0; padding: 24px; }
.box { background: #fff; border: 1px solid #d1d9e0; border-radius: 6px; padding: 8px 24px 16px;
       max-width: 860px; margin: 0 auto 24px; }
.label { font-weight: 600; color: #59636e; font-size: 12px; margin: 12px 0 0; }
h3 { font-size: 18px; border-bottom: 1px solid #d1d9e0; padding-bottom: 6px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
code { background: #eff1f3; border-radius: 6px; padding: 2px 5px; font-size: 85%; }
a { color: #0969da; text-decoration: none; }
blockquote { color: #59636e; border-left: 4px solid #d1d9e0; margin: 0; padding: 0 12px; }
"""


def release(flow: str, fail: bool) -> str:
    with Emulator(token=TOKEN, stage_seconds={"prepare": 1.2, "test": 0.6, "run": 0.5}) as emu:
        emu.set_branch_head("main", SHA)  # the branch still at the commit of the run
        live = emu.add_workspace(team_id=1, name="shop-live")
        emu.add_domain(1, "shop.example.com", {"/": [live]})
        if fail:
            emu.configure_stage(
                live,
                "prepare",
                steps=3,
                fail_step=1,
                error_lines=["npm ERR! missing script: build"],
            )
        inputs = {"api-token": TOKEN, "api-url": emu.url, "flow": flow, "test": "true"}
        if flow == "simple":
            inputs["workspace-id"] = str(live)
        else:
            inputs.update({"team-id": "1", "plan-id": "8", "domain": "shop.example.com"})
        with tempfile.TemporaryDirectory() as tmp:
            # Runs entrypoint.py as the runner does (emulator/runner.py).
            return Runner(Path(tmp)).run(inputs).summary


def main() -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    boxes = []
    for label, flow, fail in (
        ("zero-downtime release, success", "zero-downtime", False),
        ("simple release, failing prepare", "simple", True),
    ):
        body = markdown.markdown(release(flow, fail), extensions=["tables"])
        boxes.append(f'<p class="label">Job summary: {label}</p><div class="box">{body}</div>')
    html = f"<!doctype html><meta charset=utf-8><style>{CSS}</style>{''.join(boxes)}"
    page = docs / "summary.html"
    page.write_text(html)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--window-size=920,1160",
                f"--screenshot={docs / 'summary.png'}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {page} and {docs / 'summary.png'}")


if __name__ == "__main__":
    main()
