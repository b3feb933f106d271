"""The repository's pytest.ini: one pytest run over several packages shows each test under its true path.

Without a configuration at the repository root, pytest roots a run over ``trainer-a/tests
trainer-b/tests`` at the first package's ``pyproject.toml``, and the other packages' tests get ids
relative to their own ``tests/`` folder: two packages' ``test_profile.py`` become one id, shown under
the wrong package, and the progress counter stops short of 100%. These tests copy ``pytest.ini`` into
a repository of two such packages and run pytest there, as ``nox -s tests`` does at the root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTEST_INI = REPO_ROOT / "pytest.ini"
PACKAGES = ("trainer-profile-aa", "trainer-profile-bb")
# A test module of the name `trainer new-profile` once wrote and the bundled packages still use.
TEST_MODULE = "tests/test_profile.py"
EXPECTED_IDS = [
    f"{package}/{TEST_MODULE}::{test}" for package in PACKAGES for test in ("test_renders", "test_parses")
]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A copy of the repository's pytest.ini beside two packages whose test modules share a name."""
    assert PYTEST_INI.is_file(), f"{PYTEST_INI} is missing: the repository root needs its pytest.ini"
    shutil.copy(PYTEST_INI, tmp_path / "pytest.ini")
    for package in PACKAGES:
        root = tmp_path / package
        (root / "tests").mkdir(parents=True)
        # pytest would take this pyproject.toml (with no pytest table) for the root without pytest.ini.
        (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\nversion = "0.1.0"\n')
        (root / TEST_MODULE).write_text(
            f"PACKAGE = {package!r}\n\n\n"
            "def test_renders():\n    assert PACKAGE\n\n\n"
            "def test_parses():\n    assert PACKAGE.startswith('trainer-')\n"
        )
    return tmp_path


def run_pytest(directory: Path, *args: str) -> tuple[list[str], list[str], str]:
    """pytest -v in ``directory``: the test ids, the progress counters and the whole output."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    results = re.findall(r"^(\S+::\S+) PASSED +\[ *(\d+)%\]$", result.stdout, flags=re.MULTILINE)
    return [test_id for test_id, _ in results], [counter for _, counter in results], output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([f"{package}/tests" for package in PACKAGES], id="package-folders"),  # as nox -s tests
        pytest.param([], id="no-args"),  # plain pytest: testpaths
    ],
)
def test_a_run_from_the_root_shows_true_paths_and_reaches_100_percent(repository: Path, args: list[str]):
    test_ids, counters, output = run_pytest(repository, *args)
    assert f"rootdir: {repository}" in output
    assert test_ids == EXPECTED_IDS
    assert counters == ["25", "50", "75", "100"]


def test_a_packages_own_folder_still_runs_its_tests_alone(repository: Path):
    test_ids, counters, output = run_pytest(repository / PACKAGES[1])
    assert f"rootdir: {repository}" in output
    # pytest -v shows each test's path from where it was started: here the package's folder.
    assert test_ids == [test_id.removeprefix(f"{PACKAGES[1]}/") for test_id in EXPECTED_IDS[2:]]
    assert counters == ["50", "100"]
