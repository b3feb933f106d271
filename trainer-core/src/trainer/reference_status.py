"""The status file reference: the keys a run writes to ``status.json``.

:func:`status_keys` finds every top-level key a run can write, from the status
hub's initial state and the ``emit(...)`` calls in the package's source (read,
not imported, so no torch); :func:`documented_status_keys` reads the keys a page
documents, so the documentation tests and the site build can compare the two.
:func:`initial_status_reference` builds the markdown of the
``<!-- reference: status-initial -->`` block.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from trainer.reference_markdown import fence


def status_keys(package_dir: Path | None = None) -> set[str]:
    """Every top-level key a run can write to ``status.json``.

    The keys of :func:`trainer.monitoring.status.initial_state`, the ones the
    status hub adds, and every key passed to a hub's ``emit(event, key=...)``
    anywhere in the package's source. Keys passed as ``**fields`` are found when
    ``fields`` is a dict literal, or gets ``fields["key"] = ...``, in the same
    function. The source is read, not imported, so this needs no torch.

    :param package_dir: the source tree to scan; default: the installed ``trainer``.
    """
    from trainer.monitoring.hub import StatusHub

    keys = set(StatusHub([]).state)
    root = Path(__file__).parent if package_dir is None else package_dir
    for path in sorted(root.rglob("*.py")):
        keys |= emitted_keys(path.read_text(encoding="utf-8"))
    return keys


def emitted_keys(source: str) -> set[str]:
    """The keys the ``.emit(...)`` calls in ``source`` pass as keyword arguments (see :func:`status_keys`)."""
    keys: set[str] = set()
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for call in ast.walk(function):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "emit"
                and call.keywords
            ):
                continue
            for keyword in call.keywords:
                if keyword.arg is not None:
                    keys.add(keyword.arg)
                elif isinstance(keyword.value, ast.Dict):
                    keys |= _string_keys(keyword.value)
                elif isinstance(keyword.value, ast.Name):
                    keys |= _keys_given_to(keyword.value.id, function)
    return keys


def _keys_given_to(name: str, function: ast.AST) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                keys |= _string_keys(node.value)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == name
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    keys.add(target.slice.value)
    return keys


def _string_keys(node: ast.Dict) -> set[str]:
    return {key.value for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}


def documented_status_keys(markdown: str, section: str = "Keys") -> set[str]:
    """The top-level ``status.json`` keys a page documents in its section ``section``.

    A key is documented by a table row, in the part of the page under the
    heading ``## Keys`` (up to the next heading of that level), whose first cell
    is the key alone in backticks: ``| `loss` | ... |``. Rows for nested values
    (``previews.samples``) do not count.
    """
    parts = re.split(r"^## +(.+?)\s*$", markdown, flags=re.MULTILINE)
    text = "".join(body for title, body in zip(parts[1::2], parts[2::2], strict=True) if title == section)
    return set(re.findall(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|", text, flags=re.MULTILINE))


def initial_status_reference() -> str:
    """Markdown: ``status.json`` as the status hub starts it, before the first event."""
    from trainer.monitoring.hub import StatusHub

    return fence(json.dumps(StatusHub([]).state, indent=2), "json") + "\n"
