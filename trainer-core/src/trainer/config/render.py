"""A config as YAML, for ``trainer config show`` and for writing a starting file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

from trainer.config.schema import TrainerConfig
from trainer.config.validation import field_types, field_values, is_section, is_section_list


def render_yaml(config: TrainerConfig, origins: Mapping[str, str] | None = None) -> str:
    """``config`` as YAML that loads back into the same config, every field written out.

    :param origins: dotted path to origin, such as :meth:`ConfigLoader.origins`
        returns; each value is then followed by a ``# <origin>`` comment.
    """
    rows: list[tuple[str, str]] = []  # (line, comment)
    _add_rows(config, "", 0, origins or {}, rows)
    width = max(len(line) for line, comment in rows if comment) if origins else 0
    lines = [f"{line.ljust(width)}  # {comment}" if comment else line for line, comment in rows]
    return "\n".join(lines) + "\n"


def _add_rows(
    section: Any, prefix: str, depth: int, origins: Mapping[str, str], rows: list[tuple[str, str]]
) -> None:
    indent = "  " * depth
    hints = field_types(type(section))
    for name, value in field_values(section).items():
        origin = origins.get(f"{prefix}{name}", "")
        if is_section(type(value)):
            rows.append((f"{indent}{name}:", ""))
            _add_rows(value, f"{prefix}{name}.", depth + 1, origins, rows)
        elif is_section_list(hints[name]) and value:
            # A list of sections (data.mixture): one origin for the list, every item's fields written out.
            rows.append((f"{indent}{name}:", origin))
            for item in value:
                item_rows: list[tuple[str, str]] = []
                _add_rows(item, "", depth + 2, {}, item_rows)
                first, _ = item_rows[0]
                item_rows[0] = (f"{indent}  - {first.lstrip()}", "")
                rows += item_rows
        else:
            rows.append((f"{indent}{name}: {inline_yaml(value)}", origin))


def inline_yaml(value: Any) -> str:
    """``value`` as YAML on one line (flow style), read back as the same value: ``{a: 1}``, ``'yes'``."""
    text = (
        yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True, sort_keys=False)
        .removesuffix("\n...\n")
        .strip()
    )
    # YAML folds multi-line strings over several lines; a JSON string is valid YAML on one.
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text
