"""The markdown helpers the generated reference is written with.

Code fences and inline code spans that survive any backticks in their text,
escaping for prose and table cells, the anchors of headings, and docstrings'
reStructuredText as markdown. :mod:`trainer.reference` and the modules it builds
its blocks with (:mod:`trainer.reference_cli`, :mod:`trainer.reference_status`)
write with these; nothing here imports anything of trainer's.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from collections.abc import Iterable
from typing import Any


def rst_to_markdown(text: str) -> str:
    """A docstring's reStructuredText, as markdown.

    Handles what trainer's docstrings use: ````literal````, roles such as
    ``:class:`X```, ``:param name:`` / ``:return:`` / ``:raises X:`` fields and
    ``::`` literal blocks.
    """
    text = re.sub(r":(?:class|meth|func|data|mod|attr|exc|obj):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    out: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        field = re.match(r"^:(param|parameter|return|returns|raises|raise|ivar)\s*([^:]*):\s*(.*)$", line)
        if field:
            kind, name, body = field.groups()
            index += 1
            while index < len(lines) and lines[index].startswith((" ", "\t")) and lines[index].strip():
                body += " " + lines[index].strip()
                index += 1
            label = {"param": "Argument", "parameter": "Argument", "ivar": "Attribute"}.get(kind)
            if label:
                out.append(f"- **{label} `{name.strip()}`**: {body}")
            elif kind.startswith("return"):
                out.append(f"- **Returns**: {body}")
            else:
                out.append(f"- **Raises `{name.strip()}`**: {body}")
            continue
        if line.rstrip().endswith("::"):
            intro = line.rstrip()[:-2].rstrip()
            if intro:
                out.append(intro + ":")
            index += 1
            block: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith((" ", "\t"))):
                block.append(lines[index])
                index += 1
            out += ["", fence(textwrap.dedent("\n".join(block)).strip("\n"), "text"), ""]
            continue
        out.append(line)
        index += 1
    return "\n".join(out).strip()


def fence(text: str, language: str = "") -> str:
    """``text`` in a fenced code block, with a fence longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{language}\n{text}\n{marker}"


def _code(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(_code(json.dumps(value, ensure_ascii=False)) for value in values)


def _escape(text: str) -> str:
    """Plain text made safe for markdown; code spans in backticks are kept as they are."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        part
        if part.startswith("`") and part.endswith("`") and len(part) > 1
        else re.sub(r"([\\*_\[\]>|])", r"\\\1", part).replace("<", "&lt;")  # markdown cannot escape <
        for part in parts
    )


def _cell(text: str) -> str:
    """Markdown for one table cell: on one line, with bare pipes escaped."""
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(text.split()))


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension gives a heading."""
    slug = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", slug)
