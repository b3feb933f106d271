"""Help text: each command lists the options it acts on, and the command lists are never cut."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.cli.options import config_options

TRAINING_FLAGS = (
    "--lr",
    "--epochs",
    "--max-steps",
    "--batch-size",
    "--max-length",
    "--output-dir",
    "--report-to",
)


def help_text(*args: str, width: int = 80) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="trainer", terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.output


def option_names(text: str) -> set[str]:
    options = text.split("Options:", 1)[1]
    return {
        word.rstrip(",") for line in options.splitlines() for word in line.split()[:3] if word[:2] == "--"
    }


def test_preview_lists_only_the_flags_that_change_what_it_renders():
    names = option_names(help_text("preview"))
    assert {"--config", "--dataset", "--model", "--profile", "--set", "--tokens"} <= names
    assert not names & set(TRAINING_FLAGS)


@pytest.mark.parametrize("command", [["run"], ["config", "show"]])
def test_commands_on_the_whole_config_list_every_flag(command):
    names = option_names(help_text(*command))
    assert {"--config", "--dataset", "--model", "--profile", "--set", *TRAINING_FLAGS} <= names


def test_preview_refuses_a_training_flag():
    result = CliRunner().invoke(cli, ["preview", "--lr", "0.1"], prog_name="trainer")
    assert result.exit_code == 2
    assert "No such option '--lr'" in result.output


def test_run_help_shows_the_defaults_of_profile_and_output_dir():
    text = " ".join(help_text("run", width=200).split())
    assert "(profile.name; default: chat)" in text
    assert "(output.output_dir; default: outputs/run)" in text


def _command_lines(text: str) -> list[str]:
    return text.split("Commands:", 1)[1].strip().splitlines()


@pytest.mark.parametrize("width", [80, 50])
@pytest.mark.parametrize("group", [[], ["config"]], ids=["trainer", "trainer config"])
def test_short_help_is_never_cut(group, width):
    lines = _command_lines(help_text(*group, width=width))
    assert len(lines) >= 2
    cut = [line for line in lines if line.rstrip().endswith("...")]
    assert cut == []


def test_every_builtin_command_has_a_whole_sentence_for_short_help():
    def walk(group: click.Group):
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from walk(command)

    for command in walk(cli):
        summary = command.get_short_help_str(limit=1000)
        assert summary.endswith(".") and len(summary) <= 60, (command.name, summary)


def test_config_options_rejects_an_unknown_flag():
    with pytest.raises(ValueError, match="unknown shortcut flag"):
        config_options(["lr", "learning_rate"])
