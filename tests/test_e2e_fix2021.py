"""End to end: the fixes of the review of issues 20 and 21 beyond its own tests
(``test_e2e_review2021.py``): the other side of each rule, and the cases the
review named for other flows.
"""

from __future__ import annotations

from emulator import Emulator
from emulator.runner import Runner, mark, stamp

from .test_e2e_zero_downtime import DOMAIN, TEAM, zd_inputs


def notices(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::notice")]


# -- superseded: the notice names what decided ---------------------------------------------


def test_within_one_run_the_superseded_notice_names_the_starts(
    emu: Emulator, runner: Runner
) -> None:
    """Attempt 1 of run 1 meets attempt 2 of the same run, which started a minute
    from now (a re-run that switched first): the runs cannot decide, the starts do,
    and the notice says so."""
    later = stamp(-60)
    live = emu.add_workspace(
        team_id=TEAM, name="shop-attempt2", env=mark(run="1.2", domain=DOMAIN, started=later)
    )
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.status == "superseded", result.stdout
    (notice,) = notices(result.stdout)
    assert f"which started at {later}, later than this release" in notice, notice
    assert "workflow run (" not in notice, notice
