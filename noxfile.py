"""Sessions for the whole repository: every ``trainer-*`` package is found and tested.

nox -s tests       install the packages (not editable) and run every package's tests
nox -s lint        ruff on all packages
nox -s typecheck   mypy on trainer-core
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(
    path.name
    for path in ROOT.iterdir()
    if path.name.startswith("trainer-") and (path / "pyproject.toml").is_file()
)
# A CPU build that pip finds locally; an unpinned torch would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Install trainer-core and every profile package, then run all their tests."""
    session.install(TORCH)
    # hatchling: the tests pip-install fake plugin packages without build isolation.
    # tensorboard: the --report-to tensorboard test writes real event files.
    session.install("pytest", "hatchling", "tensorboard", "hypothesis")
    # trainer-core with its LoRA extra, so the peft path is tested too.
    session.install(
        *(
            f"./{package}[lora]" if package == "trainer-core" else f"./{package}"
            for package in PACKAGES
        )
    )
    session.run(
        "pytest",
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        *(f"{package}/tests" for package in PACKAGES),
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every package and this file."""
    session.install("ruff")
    session.run("ruff", "check", *PACKAGES, "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over trainer-core's source."""
    session.install(
        "mypy", "pluggy", "click", "PyYAML", "types-PyYAML", "pytest", "packaging"
    )
    session.run(
        "mypy", "--config-file", "trainer-core/pyproject.toml", "trainer-core/src"
    )
