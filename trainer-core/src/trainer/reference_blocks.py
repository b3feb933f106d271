"""The generated blocks of the documentation pages, kept in the committed pages.

A generated block is a marker line, the markdown it stands for, and an end line::

    <!-- reference: config -->

    ...what trainer.reference generates...

    <!-- end reference: config -->

:func:`rewrite` replaces each block (or a bare marker with no end line yet) with
the marker, fresh content and the end line, so rewriting twice changes nothing.
The comments are invisible in the built site; on a code host the page reads
complete. ``python -m trainer.reference_blocks docs/pages`` rewrites the pages
in place; ``--check`` only lists the pages that are out of date.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

KINDS = ("reference", "render", "scaffold", "run")
"""The kinds of marker: ``<!-- kind: arguments -->``."""

START = re.compile(r"<!--[ \t]*(" + "|".join(KINDS) + r"):[ \t]*([^\n]*?)[ \t]*-->")
"""The marker that opens a block (the same as :data:`trainer.reference.MARKER`, on one line)."""

END = re.compile(r"<!--[ \t]*end[ \t]+(" + "|".join(KINDS) + r"):[ \t]*([^\n]*?)[ \t]*-->")
"""The line that closes a block: ``<!-- end kind: arguments -->``."""

REWRITE_COMMAND = "python -m trainer.reference_blocks docs/pages"
"""How to bring the committed pages up to date, from the repository root."""


def end_line(kind: str, arguments: str) -> str:
    """The line that closes the block of ``<!-- kind: arguments -->``."""
    return f"<!-- end {kind}: {arguments} -->"


def rewrite(markdown: str, generate: Callable[[str, str], str]) -> str:
    """``markdown`` with every block's content replaced by ``generate(kind, arguments)``.

    A marker's block runs to the first end line with the same kind and arguments
    that comes before the next marker; a marker with none is a bare marker, and
    gets its end line.
    """
    parts: list[str] = []
    position = 0
    starts = list(START.finditer(markdown))
    for index, start in enumerate(starts):
        if start.start() < position:
            continue  # inside a block already replaced (a marker quoted in old content)
        kind, arguments = start.group(1), start.group(2)
        limit = starts[index + 1].start() if index + 1 < len(starts) else len(markdown)
        stop = start.end()
        for end in END.finditer(markdown, start.end(), limit):
            if (end.group(1), end.group(2)) == (kind, arguments):
                stop = end.end()
                break
        content = generate(kind, arguments).strip("\n")
        parts += [markdown[position : start.start()], start.group(0), "\n\n", content, "\n\n"]
        parts.append(end_line(kind, arguments))
        position = stop
    parts.append(markdown[position:])
    return "".join(parts)


def bare_markers(markdown: str) -> list[str]:
    """The markers of ``markdown`` that no end line closes before the next marker."""
    starts = list(START.finditer(markdown))
    bare = []
    for index, start in enumerate(starts):
        limit = starts[index + 1].start() if index + 1 < len(starts) else len(markdown)
        closes = (end.groups() == start.groups() for end in END.finditer(markdown, start.end(), limit))
        if not any(closes):
            bare.append(start.group(0))
    return bare


def pages(paths: list[Path]) -> list[Path]:
    """The markdown files ``paths`` name, folders searched for ``*.md``, sorted."""
    found: set[Path] = set()
    for path in paths:
        found.update(path.rglob("*.md") if path.is_dir() else [path])
    return sorted(found)


def main(argv: list[str]) -> int:
    """Rewrite the generated blocks of the pages: ``[--check] PATH...`` (files or folders).

    With ``--check`` nothing is written; the pages that are out of date are listed
    and the exit status is 1 if there are any.
    """
    from trainer.reference import expand

    check = "--check" in argv
    paths = [Path(argument) for argument in argv if argument != "--check"]
    if not paths:
        print("usage: python -m trainer.reference_blocks [--check] PATH...", file=sys.stderr)
        return 2
    stale = []
    for page in pages(paths):
        text = page.read_text(encoding="utf-8")
        expanded = expand(text)
        if expanded == text:
            continue
        stale.append(page)
        if not check:
            page.write_text(expanded, encoding="utf-8")
        print(f"{'out of date' if check else 'rewrote'}: {page}")
    if check and stale:
        print(f"rewrite them with: {REWRITE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
