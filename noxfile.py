"""Sessions for the whole repository: every ``trainer-*`` package is found and tested.

nox -s tests       install the packages (not editable) and run every package's tests
nox -s lint        ruff on all packages and the docs' Python
nox -s typecheck   mypy on trainer-core
nox -s docs        build the documentation site into docs/site (mkdocs, strict)
nox -s soak        the two-process run, 30 times over (catches a 1-in-10 fault); CI runs it
nox -s bench       training speed against a bare loop and TRL (not run by default):
                   nox -s bench -- --quick, or -- --case qwen3-wide --json speed.json
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

# TRL for the bench session's comparison; 1.16.0 runs with the transformers 5.x trainer-core uses.
TRL = "trl==1.16.0"

# The docs build imports only trainer's light modules: its packages go in without their
# dependencies, with just these, so a reference page that needed torch would fail to build.
DOCS_REQUIREMENTS = ["mkdocs>=1.6,<1.7", "pluggy", "click", "PyYAML", "packaging"]

nox.options.sessions = ["lint", "typecheck", "docs", "tests"]
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
    # pytest.ini at the root roots the run here, so every test shows under its package's path;
    # importlib (pytest.ini sets it too) as several packages hold a tests/test_profile.py.
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
    """ruff over every package, this file, the benchmarks and the docs' hooks."""
    session.install("ruff")
    session.run("ruff", "check", *PACKAGES, "noxfile.py", "benchmarks", "docs")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over trainer-core's source."""
    session.install(
        "mypy", "pluggy", "click", "PyYAML", "types-PyYAML", "pytest", "packaging"
    )
    session.run(
        "mypy", "--config-file", "trainer-core/pyproject.toml", "trainer-core/src"
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs; --strict turns any warning into a failure.

    The reference pages are generated from the installed packages while the site is built.
    """
    session.install(*DOCS_REQUIREMENTS)
    session.install("--no-deps", *(f"./{package}" for package in PACKAGES))
    # Written to docs/site (site_dir in docs/mkdocs.yml), which git ignores.
    session.run(
        "mkdocs", "build", "--strict", "-f", "docs/mkdocs.yml", *session.posargs
    )


@nox.session
def soak(session: nox.Session) -> None:
    """The two-process (torchrun, CPU) run's end, 30 times over: tests marked ``soak``.

    ``TRAINER_SOAK_RUNS=N nox -s soak`` runs it N times.
    """
    session.install(TORCH)
    session.install("pytest", "./trainer-core")
    session.run(
        "pytest", "-p", "no:cacheprovider", "-m", "soak", "trainer-core/tests/test_distributed.py",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Training throughput of trainer, a bare PyTorch loop and TRL: benchmarks/train_speed.py.

    Arguments after ``--`` go to the script (``--quick``, ``--case``, ``--json PATH``, ...).
    """
    session.install(TORCH)
    session.install("./trainer-core", "./trainer-profile-regime3", TRL)
    session.run("python", "benchmarks/train_speed.py", *session.posargs)
