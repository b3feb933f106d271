"""Shell completion: commands, options, profile names and paths, through click's completion protocol."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def complete(run_trainer, words: str, shell: str = "bash", plugins: tuple[str, ...] = ()) -> list[str]:
    """What ``trainer`` answers a shell completing the last word of ``words`` (``"trainer run --pro"``).

    A trailing space asks for the next word. Bash's answer is ``type,value`` lines.
    """
    result = run_trainer(env=_request(words, shell), plugins=plugins)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def _request(words: str, shell: str = "bash") -> dict[str, str]:
    """The variables a shell's completion script sets to ask for the last word of ``words``."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    if shell == "fish":  # fish passes the word being completed, not its index
        return {"_TRAINER_COMPLETE": "fish_complete", "COMP_WORDS": words, "COMP_CWORD": words.split(" ")[-1]}
    return {"_TRAINER_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}


def test_commands_complete(run_trainer):
    assert complete(run_trainer, "trainer ru") == ["plain,run"]
    commands = complete(run_trainer, "trainer ")
    for name in ("completion", "config", "eval", "generate", "preview", "profiles", "run"):
        assert f"plain,{name}" in commands
    assert complete(run_trainer, "trainer config sh") == ["plain,show"]


def test_options_complete(run_trainer):
    assert complete(run_trainer, "trainer run --pro") == ["plain,--profile"]
    assert complete(run_trainer, "trainer preview --ma") == []  # preview takes no --max-steps
    assert "plain,--max-steps" in complete(run_trainer, "trainer run --ma")


def test_profile_names_come_from_the_installed_plugins(run_trainer):
    names = complete(run_trainer, "trainer run --profile ", plugins=("marker",))
    assert "plain,chat" in names and "plain,shout" in names  # built in, and a third-party plugin's
    assert complete(run_trainer, "trainer preview --profile sh", plugins=("marker",)) == ["plain,shout"]
    assert complete(run_trainer, "trainer generate --profile sh", plugins=("marker",)) == ["plain,shout"]
    assert complete(run_trainer, "trainer eval --profile sh", plugins=("marker",)) == ["plain,shout"]
    blocked = complete(run_trainer, "trainer --block-plugin marker run --profile ", plugins=("marker",))
    assert "plain,chat" in blocked and "plain,shout" not in blocked


def test_a_composition_completes_its_last_part(run_trainer):
    names = complete(run_trainer, "trainer run --profile chat+", plugins=("marker",))
    assert all(name.startswith("plain,chat+") for name in names)
    # chat is named already; shout, like chat, builds the messages, and a composition has one base.
    assert "plain,chat+chat" not in names and "plain,chat+shout" not in names
    assert complete(run_trainer, "trainer run --profile shout+ch", plugins=("marker",)) == []


def test_zsh_and_fish_get_profile_descriptions(run_trainer):
    zsh = complete(run_trainer, "trainer run --profile sh", shell="zsh", plugins=("marker",))
    assert zsh == ["plain", "shout", "Upper-case answers"]
    fish = complete(run_trainer, "trainer run --profile sh", shell="fish", plugins=("marker",))
    assert fish == ["plain,shout\tUpper-case answers"]


def test_paths_complete_as_files_or_directories(run_trainer):
    assert complete(run_trainer, "trainer run --model ") == ["dir,"]
    assert complete(run_trainer, "trainer run --dataset da") == ["file,da"]
    assert complete(run_trainer, "trainer run --config ") == ["file,"]
    assert complete(run_trainer, "trainer eval --dataset ") == ["file,"]
    assert complete(run_trainer, "trainer generate --model ") == ["dir,"]
    assert complete(run_trainer, "trainer suggest-profile ") == ["file,"]


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "complete -o nosort -F _trainer_completion trainer"),
        ("zsh", "compdef _trainer_completion trainer"),
        ("fish", "complete --no-files --command trainer"),
    ],
)
def test_completion_prints_the_shell_script(run_trainer, shell, expected):
    result = run_trainer("completion", shell)
    assert result.returncode == 0, result.stderr
    assert f"_TRAINER_COMPLETE={shell}_complete" in result.stdout
    assert expected in result.stdout
    assert result.stdout == run_trainer(env={"_TRAINER_COMPLETE": f"{shell}_source"}).stdout


def test_completion_defaults_to_the_login_shell(run_trainer):
    assert "compdef" in run_trainer("completion", env={"SHELL": "/usr/bin/zsh"}).stdout
    result = run_trainer("completion", env={"SHELL": "/bin/tcsh"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: cannot tell which shell to complete from SHELL='/bin/tcsh'; "
        "name it: trainer completion bash|zsh|fish"
    ]


def _bash_version() -> tuple[int, int] | None:
    bash = shutil.which("bash")
    if bash is None:
        return None
    output = subprocess.run([bash, "--norc", "-c", 'echo "$BASH_VERSION"'], capture_output=True, text=True)
    match = re.match(r"(\d+)\.(\d+)", output.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


@pytest.mark.skipif((_bash_version() or (0, 0)) < (4, 4), reason="click's bash completion needs bash 4.4+")
def test_bash_completes_through_the_script(tmp_path: Path):
    """The script `trainer completion bash` prints, sourced in bash, completes a profile and a command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "trainer"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m trainer "$@"\n')
    launcher.chmod(0o755)
    script = (
        'eval "$(trainer completion bash)"\n'
        "COMP_WORDS=(trainer run --profile ch); COMP_CWORD=3\n"
        "_trainer_completion trainer\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(trainer pre); COMP_CWORD=1\n"
        "COMPREPLY=()\n"
        "_trainer_completion trainer\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    completed = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["chat", "preview"]


PROBE = """
import json, os, sys
os.environ.update({env!r})
from trainer.cli import main
try:
    main([])
except SystemExit as exit:
    assert not exit.code, exit.code
print()
print(json.dumps(sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "words", ["trainer run --profile ", "trainer ", "trainer eval --profile c", "trainer run --model "]
)
def test_completion_does_not_import_the_ml_stack(words: str):
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(env=_request(words))], capture_output=True, text=True, check=True
    )
    lines = completed.stdout.strip().splitlines()
    assert lines[0].startswith(("plain,", "dir,"))  # it did complete something
    assert json.loads(lines[-1]) == []
