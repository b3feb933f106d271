"""``trainer completion``: the script that makes a shell complete trainer's command line."""

from __future__ import annotations

import os
from pathlib import Path

import click

from trainer.errors import TrainerError

PROG_NAME = "trainer"
"""The command the script completes: the console script's name."""

COMPLETE_VAR = "_TRAINER_COMPLETE"
"""The variable click reads to answer a completion request (``_{PROG_NAME}_COMPLETE``)."""

SHELLS = ("bash", "zsh", "fish")


@click.command(short_help="Print the script that enables shell completion.")
@click.argument("shell", required=False, type=click.Choice(SHELLS))
def completion(shell: str | None) -> None:
    """Print the script that makes SHELL complete trainer's commands, options and profile names.

    SHELL is bash, zsh or fish; default: the login shell ($SHELL). Enable it with:

    \b
    bash:  eval "$(trainer completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(trainer completion zsh)"     (in ~/.zshrc, after compinit)
    fish:  trainer completion fish > ~/.config/fish/completions/trainer.fish

    The script asks trainer at each TAB; profile names come from the installed plugins.
    Bash needs version 4.4 or later.
    """
    from click.shell_completion import BashComplete, FishComplete, ShellComplete, ZshComplete

    classes: dict[str, type[ShellComplete]] = {"bash": BashComplete, "zsh": ZshComplete, "fish": FishComplete}
    root = click.get_current_context().find_root().command
    script = classes[shell or _login_shell()](root, {}, PROG_NAME, COMPLETE_VAR).source()
    click.echo(script, nl=False)


def _login_shell() -> str:
    login = os.environ.get("SHELL", "")
    name = Path(login).name
    if name not in SHELLS:
        raise TrainerError(
            f"cannot tell which shell to complete from SHELL={login!r}; "
            f"name it: trainer completion {'|'.join(SHELLS)}"
        )
    return name
