"""`trainer new-profile`: generate, install, run its own tests, list it, preview with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trainer.testing import ProfileConformance


def test_generated_package_installs_passes_its_tests_and_previews(
    run_trainer, pip_install_into, tmp_path: Path, gsm8k
):
    created = run_trainer("new-profile", "acme_steps", "--dir", "gen")
    assert created.returncode == 0, created.stderr
    package = tmp_path / "gen" / "trainer-profile-acme-steps"
    assert (package / "pyproject.toml").is_file()

    target = tmp_path / "site"
    pip_install_into(target, package)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}
    env["PYTHONPATH"] = str(target)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    conformance = [name for name in dir(ProfileConformance) if name.startswith("test_")]
    assert f"{len(conformance) + 1} passed" in tests.stdout  # the suite and the template's own test

    listed = subprocess.run(
        [sys.executable, "-m", "trainer", "profiles"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert "acme_steps" in listed.stdout and "trainer-profile-acme-steps" in listed.stdout
    preview = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "preview",
            "--profile",
            "acme_steps",
            "--dataset",
            str(gsm8k),
            "-n",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert preview.returncode == 0, preview.stderr
    assert "Final: 18" in preview.stdout


def test_two_generated_packages_are_tested_in_one_pytest_run(pip_install_into, tmp_path: Path):
    # With pytest's default import mode, test modules outside packages need unique basenames:
    # two generated tests/test_profile.py files failed with "import file mismatch".
    from trainer.scaffold import new_profile

    target = tmp_path / "site"
    for name in ("alpha", "beta"):
        package = new_profile(name, tmp_path)
        assert sorted(p.name for p in (package / "tests").iterdir()) == [f"test_{name}_profile.py"]
        pip_install_into(target, package)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}
    env["PYTHONPATH"] = str(target)
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "trainer-profile-alpha/tests",
            "trainer-profile-beta/tests",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    conformance = [name for name in dir(ProfileConformance) if name.startswith("test_")]
    assert f"{2 * (len(conformance) + 1)} passed" in tests.stdout


def test_bad_names_and_existing_targets_are_one_line_errors(run_trainer, tmp_path: Path):
    bad = run_trainer("new-profile", "Bad-Name")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "'Bad-Name' is not valid" in bad.stderr
    assert run_trainer("new-profile", "acme").returncode == 0
    again = run_trainer("new-profile", "acme")
    assert again.returncode == 2 and "already exists" in again.stderr
