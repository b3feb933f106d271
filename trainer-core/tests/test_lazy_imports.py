"""The light commands must start without the ML stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

HEAVY = ("torch", "transformers", "datasets")

PROBE = """
import json, sys
from trainer.cli import main
try:
    main({args!r})
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["profiles"],
        ["plugins"],
        ["plugins", "--json"],
        ["config", "show"],
        ["completion", "bash"],
    ],
    ids=lambda args: " ".join(args),
)
def test_light_commands_do_not_import_the_ml_stack(args):
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = json.loads(completed.stdout.strip().splitlines()[-1])
    assert imported == []


def test_help_is_fast():
    """`trainer --help` measured end to end, interpreter start included (target: under 0.3 s)."""
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trainer", "--help"], capture_output=True, check=True)
        timings.append(time.perf_counter() - start)
    # A loose bound so a busy CI machine does not fail it; an accidental torch import takes seconds.
    assert min(timings) < 1.0, timings
