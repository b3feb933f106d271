"""Shared fixtures: the fake third-party plugins, installed for real, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"
REPO_ROOT = Path(__file__).resolve().parents[2]
GSM8K = REPO_ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.fixture(scope="session")
def gsm8k() -> Path:
    """The real GSM8K test split in the shared data folder beside the repository."""
    assert GSM8K.is_file(), f"{GSM8K} is missing: the tests need ../shared/data/gsm8k beside the repository"
    return GSM8K


@dataclass
class Result:
    """What a ``trainer`` subprocess did."""

    returncode: int
    stdout: str
    stderr: str


def install_into(target: Path, package: Path) -> None:
    """pip-install ``package`` into the folder ``target`` (no dependencies, no download)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def pip_install_into():
    """:func:`install_into`, for tests that install a package they generate."""
    return install_into


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each fake plugin package under tests/fixtures/plugins, pip-installed into its own folder.

    The folders go on PYTHONPATH of a subprocess, so discovery runs through real
    installed entry points (dist-info metadata), as for any third-party package.
    """
    root = tmp_path_factory.mktemp("plugins")
    targets = {}
    for package in sorted(p for p in FIXTURE_PLUGINS.iterdir() if (p / "pyproject.toml").exists()):
        target = root / package.name
        install_into(target, package)
        targets[package.name] = target
    return targets


@pytest.fixture
def run_trainer(installed_plugins: dict[str, Path], tmp_path: Path) -> Callable[..., Result]:
    """Run ``python -m trainer ARGS`` with some fake plugins installed.

    ``run_trainer("profiles", plugins=["broken"], env={...})``
    """

    def run(
        *args: str,
        plugins: tuple[str, ...] | list[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TRAINER_") and key != "PYTHONPATH"
        }
        paths = [str(installed_plugins[name]) for name in plugins]
        if paths:
            environment["PYTHONPATH"] = os.pathsep.join(paths)
        environment.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "trainer", *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd or tmp_path,
            timeout=300,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run
