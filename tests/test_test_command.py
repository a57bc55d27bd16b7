"""scripts/test's control flow (issue 23): every command CONTRIBUTING documents
passes, and pytest collecting no tests stays a failure where nothing was chosen.

The script runs in a copy of the repository's layout whose tools are fakes:
``.venv/bin/python`` records each pytest call and answers as pytest would for
a suite with the tests ``FAKE_TESTS`` names (``unit`` for tests not marked
``container``, ``container`` for the container tests; a file argument
``tests/test_container.py`` chooses only those, ``tests/test_config.py`` only the
others); ruff, mypy and scripts/container-setup.sh record that they ran. No
podman, no real test run.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = r"""#!/usr/bin/env bash
# pytest as scripts/test calls it: -m pytest [...] -m <expr> [...] [args...]
echo "python $*" >>"$CALLS"
marker="" collect=0 files=()
while (($#)); do
    case $1 in
        -m) shift; [[ $1 == pytest ]] || marker=$1 ;;
        --collect-only) collect=1 ;;
        tests/*) files+=("$1") ;;
    esac
    shift
done
has=()
for kind in $FAKE_TESTS; do
    for file in "${files[@]}"; do
        [[ $file == tests/test_container.py && $kind != container ]] && continue 2
        [[ $file == tests/test_config.py && $kind == container ]] && continue 2
    done
    has+=("$kind")
done
case $marker in
    container) want=container ;;
    "not container"*) want=unit ;;
    *) want=any ;;
esac
for kind in "${has[@]}"; do
    if [[ $want == any || $want == "$kind" ]]; then
        ((collect)) || echo "ran $want" >>"$CALLS"
        exit 0
    fi
done
exit 5
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/test", tmp_path / "scripts/test")
    (tmp_path / "scripts/venv.sh").write_text("")
    (tmp_path / "scripts/container-setup.sh").write_text('echo "container-setup" >>"$CALLS"\n')
    bin_dir = tmp_path / ".venv/bin"
    bin_dir.mkdir(parents=True)
    for name, text in {
        "python": FAKE_PYTHON,
        "ruff": '#!/usr/bin/env bash\necho "ruff $*" >>"$CALLS"\n',
        "mypy": '#!/usr/bin/env bash\necho "mypy" >>"$CALLS"\n',
    }.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def run(repo: Path, *args: str, tests: str = "unit container") -> tuple[int, list[str], str]:
    calls = repo / "calls"
    calls.write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "CALLS": str(calls),
        "FAKE_TESTS": tests,
        "CS_CONTAINER_DIR": str(repo / "cs-container"),
    }
    proc = subprocess.run(
        ["bash", str(repo / "scripts/test"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ran = [line for line in calls.read_text().splitlines() if not line.startswith("python")]
    return proc.returncode, ran, proc.stdout + proc.stderr


def test_the_documented_selection_passes_without_podman(repo: Path) -> None:
    """`scripts/test tests/test_config.py -k duration` (CONTRIBUTING): no
    container test among the chosen ones, so no container pass and no podman."""
    code, ran, out = run(repo, "tests/test_config.py", "-k", "duration")
    assert code == 0, out
    assert "ran unit" in ran
    assert "ran container" not in ran
    assert "container-setup" not in ran, "podman was set up for no container test"
    assert "no container test among the chosen ones" in out


def test_choosing_only_container_tests_runs_only_the_container_pass(repo: Path) -> None:
    code, ran, out = run(repo, "tests/test_container.py")
    assert code == 0, out
    assert ran.count("container-setup") == 1 and "ran container" in ran
    assert "ran unit" not in ran


def test_a_plain_run_runs_both_passes(repo: Path) -> None:
    code, ran, out = run(repo)
    assert code == 0, out
    assert [line for line in ran if line.startswith(("ruff", "mypy"))] == [
        "ruff check .",
        "ruff format --check .",
        "mypy",
    ]
    assert ran.index("container-setup") < ran.index("ran unit") < ran.index("ran container")


@pytest.mark.parametrize(
    ("args", "tests"),
    [
        ((), "unit"),  # a plain run with no container test: the container pass finds none
        ((), "container"),  # ... or no other test
        (("tests/test_config.py",), "container"),  # chosen tests, none of them exists
        (("--quick",), "container"),  # the quick pass finds nothing to run
    ],
    ids=["plain-no-container", "plain-no-unit", "chosen-none", "quick-none"],
)
def test_collecting_no_tests_is_a_failure(repo: Path, args: tuple[str, ...], tests: str) -> None:
    code, _ran, out = run(repo, *args, tests=tests)
    assert code == 1, out
    assert "pytest collected no tests: that is a failure" in out


def test_quick_never_sets_up_podman(repo: Path) -> None:
    code, ran, out = run(repo, "--quick", "-n", "0", "tests/test_config.py")
    assert code == 0, out
    assert "container-setup" not in ran and "ran unit" in ran
