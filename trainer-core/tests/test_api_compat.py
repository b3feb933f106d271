"""A profile package written for plugin API 1.1 keeps installing, loading, passing its tests, previewing.

tests/fixtures/plugins/api11 is such a package, left as its author wrote it: a
``DataProfile`` whose ``prepare_messages`` returns plain ``{"role", "content"}``
string dicts, typed with ``trainer.profiles.base.Message``, with its own tests
subclassing ``ProfileConformance``. It is copied out of the repository (as a
third party's checkout), pip-installed into a folder, and used through
subprocesses with only that folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.testing import ProfileConformance

FIXTURE = Path(__file__).parent / "fixtures" / "plugins" / "api11"
ROWS = [
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "What is 6 times 7?", "reasoning": "6 * 7 = 42", "answer": "42"},
]


class Installed:
    """The copied package, the folder it is installed into, and a runner for subprocesses."""

    def __init__(self, root: Path, package: Path, target: Path) -> None:
        self.root = root
        self.package = package
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TRAINER_") and key != "PYTHONPATH"
        }
        self.env["PYTHONPATH"] = str(target)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=300,
        )


@pytest.fixture(scope="module")
def api11(pip_install_into, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("api11")
    package = root / "trainer-test-api11"
    shutil.copytree(FIXTURE, package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    target = root / "site"
    pip_install_into(target, package)
    with (root / "rows.jsonl").open("w", encoding="utf-8") as out:
        for row in ROWS:
            out.write(json.dumps(row) + "\n")
    return Installed(root, package, target)


def test_its_own_tests_pass_unchanged(api11: Installed):
    tests = api11.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(api11.package / "tests"))
    assert tests.returncode == 0, tests.stdout + tests.stderr
    conformance = [name for name in dir(ProfileConformance) if name.startswith("test_")]
    assert f"{len(conformance) + 2} passed" in tests.stdout, tests.stdout  # the suite and its own two


def test_the_plugin_loads_and_lists_its_profile(api11: Installed):
    plugins = api11.run("-m", "trainer", "plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    by_name = {info["name"]: info for info in json.loads(plugins.stdout)}
    assert "api11" in by_name, plugins.stdout
    assert by_name["api11"]["status"] == "loaded", by_name["api11"]
    assert by_name["api11"]["distribution"] == "trainer-test-api11"
    assert "register_profiles" in by_name["api11"]["hooks"]

    profiles = api11.run("-m", "trainer", "profiles")
    assert profiles.returncode == 0, profiles.stderr
    line = next((line for line in profiles.stdout.splitlines() if line.startswith("legacy_qa ")), None)
    assert line is not None and "trainer-test-api11" in line, profiles.stdout
    assert "failed to load" not in profiles.stderr


def test_preview_shows_the_rendered_text(api11: Installed):
    preview = api11.run(
        "-m", "trainer", "preview", "--profile", "legacy_qa", "--dataset", "rows.jsonl", "-n", "1"
    )
    assert preview.returncode == 0, preview.stderr
    out = preview.stdout
    assert "profile: legacy_qa" in out
    assert 'stop sequences: "\\n\\n"' in out
    assert "=== example 1 (row 1) ===" in out and "example 2" not in out
    text = out.split("--- chat-formatted text", 1)[1]
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in text
    assert "<|im_start|>assistant\nANSWER: Paris<|im_end|>" in text
    assert "then end with a last line 'ANSWER: X'." in text  # format_system_prompt's instruction


def test_preview_json_has_the_plain_messages(api11: Installed):
    preview = api11.run(
        "-m", "trainer", "preview", "--profile", "legacy_qa", "--dataset", "rows.jsonl", "--json"
    )
    assert preview.returncode == 0, preview.stderr
    shown = json.loads(preview.stdout)
    assert shown["profile"] == "legacy_qa" and shown["stop_sequences"] == ["\n\n"]
    assert [example["row"] for example in shown["examples"]] == [1, 2]
    for example, row in zip(shown["examples"], ROWS, strict=True):
        assert example.get("tools") is None  # a 1.1 profile offers no tools
        system, user, assistant = example["messages"]
        assert set(system) == {"role", "content"} and system["role"] == "system"
        assert "ANSWER: X" in system["content"]
        assert user == {"role": "user", "content": row["question"]}
        assert set(assistant) == {"role", "content"} and assistant["role"] == "assistant"
        assert assistant["content"].endswith("ANSWER: " + row["answer"])
    assert shown["examples"][1]["messages"][2]["content"] == "6 * 7 = 42\nANSWER: 42"
