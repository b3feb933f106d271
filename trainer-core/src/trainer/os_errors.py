"""Errors the machine causes, not the input or a bug: a full disk, no permission, a read-only
filesystem, a file that vanished, a failing disk.

They arrive as ``OSError``, or wrapped: transformers and trainer re-raise them inside other
exceptions (found through ``__cause__`` and ``__context__``), safetensors raises its own error
holding Rust's (``Os { code: 28, kind: StorageFull, ... }``), and torch's zip writer reports a
full disk only as ``[enforce fail at inline_container.cc:672] . unexpected pos 9713344 vs
9713232``. :func:`os_failure` finds them in an exception's chain; :func:`describe` is the line
the command line prints for one.

Standard library only: the command line imports it without torch.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The errnos of a full disk and of a used-up quota."""

# errno -> (what went wrong, in a few words; how to fix it). {path} and {mount} are filled in.
_KNOWN: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left", "free space on {mount} (df -h {mount}) or write to another filesystem"),
    errno.EDQUOT: (
        "disk quota exceeded",
        "free space within your quota on {mount} (quota -s) or write to another filesystem",
    ),
    errno.EACCES: (
        "no permission",
        "check the owner and permissions of {path} and its folder (ls -ld), or use a path you may use",
    ),
    errno.EPERM: (
        "operation not permitted",
        "check the owner and permissions of {path} and its folder (ls -ld), or use a path you may use",
    ),
    errno.EROFS: (
        "read-only filesystem",
        "{mount} is mounted read-only: write to a writable filesystem (e.g. --output-dir) or remount it",
    ),
    errno.ENOENT: (
        "file or folder missing",
        "it was moved or deleted while trainer ran, or never existed: check the path and run again",
    ),
    errno.EIO: (
        "input/output error",
        "the disk or network filesystem holding {path} failed: check it (dmesg, mount) and run again",
    ),
    errno.ESTALE: (
        "stale network file handle",
        "the network filesystem dropped {path}: check the mount (or remount it) and run again",
    ),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n 65536) and run again"),
    errno.ENFILE: ("too many open files on the system", "close other programs' files and run again"),
}

# Rust's io::Error, as safetensors words it: printed (``No space left on device (os error 28)``) or
# debugged (``Os { code: 28, kind: StorageFull, message: "No space left on device" }``).
_RUST_IO = (
    re.compile(r"(?P<reason>[^:]+) \(os error (?P<code>\d+)\)"),
    re.compile(r"Os \{ code: (?P<code>\d+), kind: \w+, message: \"(?P<reason>[^\"]*)\""),
)
_TORCH_WRITE = re.compile(
    r"inline_container\.cc.*unexpected pos"
    r"|PytorchStreamWriter failed writing"
    r"|basic_ios::clear: iostream error"
)


@dataclass(frozen=True)
class OSFailure:
    """An operating-system error found in an exception's chain."""

    code: int | None
    """Its errno; None for a torch write that failed without saying why (a full disk, mostly)."""
    reason: str
    """The system's words for it: ``No space left on device``."""
    path: str | None = None
    """The file or folder it happened to, where the error says."""

    @property
    def out_of_space(self) -> bool:
        """A full disk or a used-up quota."""
        return self.code in OUT_OF_SPACE


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the exceptions it was raised from or while handling (``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(link for link in (current.__cause__, current.__context__) if link is not None)


def os_failure(exc: BaseException) -> OSFailure | None:
    """The first operating-system error in ``exc``'s chain that the machine, not the code, caused.

    An ``OSError`` with one of the errnos this module knows (full disk, quota, permission,
    read-only filesystem, missing file, I/O error, ...), safetensors' wrapped Rust error
    with one, or torch's failed zip write. Anything else, an ``OSError`` without an errno
    included (transformers raises those for a model it cannot find), is None.
    """
    torch_write: OSFailure | None = None
    for link in exception_chain(exc):
        if isinstance(link, OSError) and link.errno in _KNOWN:
            path = link.filename if link.filename is not None else link.filename2
            reason = link.strerror or os.strerror(link.errno)
            shown = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else None  # not an fd
            return OSFailure(link.errno, reason, shown)
        text = str(link)
        for pattern in _RUST_IO:
            rust = pattern.search(text)
            if rust is not None and int(rust["code"]) in _KNOWN:
                return OSFailure(int(rust["code"]), rust["reason"].strip())
        if torch_write is None and _TORCH_WRITE.search(text):
            torch_write = OSFailure(None, f"torch could not write the file ({text.splitlines()[0].strip()})")
    return torch_write


# Functions whose frame in a traceback says what was being done. (module suffix, function) -> words.
_ACTIVITIES: tuple[tuple[str, str, str], ...] = (
    ("", "_save_checkpoint", "writing checkpoint {step}"),
    ("saving", "save_final_model", "writing the final model"),
    ("monitoring.status", "_write", "writing the status file"),
    ("reporting.report", "write_report", "writing the run report"),
    ("evaluation.final", "evaluate_after_training", "evaluating the trained model"),
    ("core.output_dir", "claim_output_dir", "preparing the output directory"),
    ("core.output_dir", "prepare_output_dir", "preparing the output directory"),
    ("core.data_stage", "tokenize", "tokenizing the data (datasets' cache)"),
    ("core.data_stage", "load_rows", "reading the data"),
)


def activity(exc: BaseException) -> str | None:
    """What the run was doing when ``exc`` was raised, read from its traceback: ``writing checkpoint 4``.

    The innermost frame that names it wins. None when no frame does.
    """
    for link in exception_chain(exc):
        for frame_module, function, frame_locals in reversed(list(_frames(link.__traceback__))):
            for module, name, words in _ACTIVITIES:
                if function == name and frame_module.endswith(module):
                    if "{step}" not in words:
                        return words
                    state = getattr(frame_locals.get("self"), "state", None)
                    step = getattr(state, "global_step", None)
                    return words.format(step=step) if step is not None else "writing a checkpoint"
    return None


def _frames(traceback: TracebackType | None) -> Iterator[tuple[str, str, dict[str, object]]]:
    while traceback is not None:
        frame = traceback.tb_frame
        yield str(frame.f_globals.get("__name__", "")), frame.f_code.co_name, frame.f_locals
        traceback = traceback.tb_next


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point of the filesystem holding ``path`` (or its nearest existing folder)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    current = current.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def filesystem_of(path: str | os.PathLike[str]) -> str:
    """The filesystem holding ``path``, as its mount point and, on Linux, its type: ``/scratch (xfs)``."""
    mount = mount_point(path)
    kind = _filesystem_type(mount)
    return f"{mount} ({kind})" if kind else str(mount)


def _filesystem_type(mount: Path) -> str | None:
    try:
        lines = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:  # not Linux
        return None
    kind = None
    for line in lines:  # the last mount on a point is the one in use
        parts = line.split()
        if len(parts) >= 3 and parts[1].replace("\\040", " ") == str(mount):
            kind = parts[2]
    return kind


def describe(exc: BaseException) -> str | None:
    """The one line (without ``Error:``) for an error the machine caused; None for anything else.

    ``<what>: <system's words> (<path>); <fix>``, where ``<what>`` is what the run was doing
    (:func:`activity`) or what went wrong. A full disk reads ``no space left on <filesystem>
    while <what>; <fix>``.
    """
    failure = os_failure(exc)
    if failure is None:
        return None
    doing = activity(exc)
    if failure.code is None:
        return (
            f"{doing or 'writing a file'} failed: {failure.reason}; the disk is full or over its quota, "
            "or failing: check free space (df -h), the quota (quota -s) and the disk, then run again"
        )
    title, fix = _KNOWN[failure.code]
    path = failure.path
    mount = str(mount_point(path)) if path else "the filesystem"
    fix = fix.format(path=path or "the file", mount=mount)
    if failure.out_of_space:
        where = filesystem_of(path) if path else "the disk"
        doing = doing or (f"writing {path}" if path else "writing")
        return f"{title} on {where} while {doing}; {fix}"
    shown = f" ({path})" if path else ""
    return f"{doing or title}: {failure.reason}{shown}; {fix}"
