"""The one exception type the command line turns into a clean message."""

from __future__ import annotations


class TrainerError(Exception):
    """A problem the user can fix: bad input, a missing plugin, an invalid config.

    The message names the thing, the value and the fix. The command line prints it
    as ``Error: <message>`` and exits with code 2, without a traceback.
    """

    exit_code = 2


class PluginError(TrainerError):
    """A plugin is missing, broken or conflicts with another plugin."""
