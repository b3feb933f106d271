"""Library warnings stay out of the user's output unless --debug; trainer's own warnings still show."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

NOTICE = "`is_gradient_checkpointing` is deprecated and will be removed in v6."

LIBRARY = f"""
import os, warnings

def load():
    warnings.warn({NOTICE!r}, FutureWarning)
    if os.environ.get("LIBRARY_LOGS"):
        from transformers.utils import logging
        logging.get_logger("transformers.modeling_utils").warning("a transformers log warning")
    return os.environ.get("TRANSFORMERS_VERBOSITY")
"""

# `trainer profiles`, with a library call on its way, as `trainer generate` loads a model.
PROBE = """
import sys
import fakelib
import trainer.profiles

listed = trainer.profiles.list_profiles

def list_profiles():
    print("TRANSFORMERS_VERBOSITY:", fakelib.load(), file=sys.stderr)
    return listed()

trainer.profiles.list_profiles = list_profiles
from trainer.cli import main
main(sys.argv[1:])
"""


@pytest.fixture
def run_probe(tmp_path: Path, installed_plugins: dict[str, Path]):
    """Run ``trainer ARGS`` whose command calls a library that warns; the broken plugin is installed."""
    (tmp_path / "fakelib").mkdir()
    (tmp_path / "fakelib" / "__init__.py").write_text(LIBRARY)

    def run(
        *args: str, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TRAINER_", "TRANSFORMERS_", "DATASETS_")) and key != "PYTHONWARNINGS"
        }
        environment["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(installed_plugins["broken"])])
        environment.update(env or {})
        return subprocess.run(
            [sys.executable, *python, "-c", PROBE, *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )

    return run


def test_library_warnings_are_hidden_and_trainers_own_still_show(run_probe):
    result = run_probe("profiles")
    assert result.returncode == 0, result.stderr
    assert "chat" in result.stdout
    assert NOTICE not in result.stderr and "FutureWarning" not in result.stderr
    assert "warning: 1 plugin(s) failed to load" in result.stderr  # trainer's own, echoed on purpose
    assert "TRANSFORMERS_VERBOSITY: error" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug", "profiles"], {}), (["profiles"], {"TRAINER_DEBUG": "1"})],
    ids=["--debug", "TRAINER_DEBUG=1"],
)
def test_debug_shows_library_warnings(run_probe, args, env):
    result = run_probe(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert f"FutureWarning: {NOTICE}" in result.stderr
    assert "TRANSFORMERS_VERBOSITY: None" in result.stderr
    assert "warning: 1 plugin(s) failed to load" in result.stderr


def test_warning_options_the_user_gives_python_win(run_probe):
    assert NOTICE in run_probe("profiles", python=("-W", "default")).stderr
    assert NOTICE in run_probe("profiles", env={"PYTHONWARNINGS": "default"}).stderr
    chosen = run_probe("profiles", env={"TRANSFORMERS_VERBOSITY": "info"})
    assert "TRANSFORMERS_VERBOSITY: info" in chosen.stderr


def test_transformers_logs_are_quiet_unless_debug(run_probe):
    quiet = run_probe("profiles", env={"LIBRARY_LOGS": "1"})
    assert quiet.returncode == 0, quiet.stderr
    assert "a transformers log warning" not in quiet.stderr
    assert "a transformers log warning" in run_probe("--debug", "profiles", env={"LIBRARY_LOGS": "1"}).stderr


def test_the_filters_and_variables_are_restored_after_the_command(monkeypatch):
    """In-process callers (the docs' generated blocks) get their own warning settings back."""
    from trainer.cli import cli

    monkeypatch.setattr("trainer.cli._debug", False)
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    monkeypatch.delenv("TRAINER_DEBUG", raising=False)
    before = list(warnings.filters)
    result = CliRunner().invoke(cli, ["profiles"], prog_name="trainer")
    assert result.exit_code == 0, result.output
    assert warnings.filters == before
    assert "TRANSFORMERS_VERBOSITY" not in os.environ
