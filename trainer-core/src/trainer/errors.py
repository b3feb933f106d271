"""The one exception type the command line turns into a clean message."""

from __future__ import annotations

import reprlib
from typing import Any


class TrainerError(Exception):
    """A problem the user can fix: bad input, a missing plugin, an invalid config.

    The message names the thing, the value and the fix. The command line prints it
    as ``Error: <message>`` and exits with code 2, without a traceback.
    """

    exit_code = 2


class FileSystemError(TrainerError):
    """The machine got in the way: a full disk, no permission, a read-only filesystem, a file that vanished.

    Not the user's input and not a bug, but fixed the same way: the message names the
    path (or filesystem), what was being done and the fix, and the command line exits
    with code 2. :mod:`trainer.os_errors` recognises these errors however they are wrapped.
    """


class OutOfSpaceError(FileSystemError):
    """The disk (or the quota) filled up: ``no space left on <filesystem> while <what>; <how much>``."""


class PluginError(TrainerError):
    """A plugin is missing, broken or conflicts with another plugin."""


class InvalidExampleError(TrainerError):
    """A row lacks what the profile needs, or holds something it cannot render.

    The message names the missing or bad field (or message) and the fix.
    Callers that know where the row came from prefix the file and row number.
    Also importable from :mod:`trainer.profiles.base`, where profiles raise it.
    """


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters, for quoting a row's value in an error.

    Only the start of a huge or deeply nested value is looked at; an int of more
    digits than Python converts to text is described instead.
    """
    try:
        text = repr(value[:61]) if isinstance(value, str) else _SHORT_REPR.repr(value)
    except ValueError:
        where = "" if isinstance(value, int) else f"a {type(value).__name__} holding "
        return f"<{where}an int of more than 4,300 digits>"
    return text if len(text) <= 60 else text[:57] + "..."


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict = 3, 8, 8
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80
