"""Value checks for config sections: each returns a problem line (``"field: ..."``) or None.

NaN fails every range check.
"""

from __future__ import annotations

from pathlib import Path

from trainer.config.validation import did_you_mean


def found(*problems: str | None) -> list[str]:
    """The problems that are not None."""
    return [problem for problem in problems if problem]


def at_least(name: str, value: float | None, minimum: float, none: str = "") -> str | None:
    """``name: must be at least ...`` unless ``value`` is None or at least ``minimum``."""
    if value is None or value >= minimum:
        return None
    also = f" (or {none})" if none else ""
    return f"{name}: must be at least {minimum}{also}, got {value!r}"


def above(name: str, value: float, bound: float) -> str | None:
    """``name: must be greater than ...`` unless ``value`` exceeds ``bound``."""
    return None if value > bound else f"{name}: must be greater than {bound}, got {value!r}"


def between(name: str, value: float, low: float, high: float, include_high: bool = True) -> str | None:
    """``name: must be from ... to ...`` unless ``value`` lies in the interval."""
    inside = low <= value <= high if include_high else low <= value < high
    if inside:
        return None
    interval = f"from {low} to {high}" if include_high else f"from {low} to below {high}"
    return f"{name}: must be {interval}, got {value!r}"


def one_of(
    name: str, value: str | None, choices: tuple[str, ...], optional: bool = False, note: str = ""
) -> str | None:
    """``name: must be one of ...`` (with a did-you-mean) unless ``value`` is a choice."""
    if value in choices or (optional and value is None):
        return None
    allowed = ", ".join(choices) + (" or null" if optional else "") + (f" ({note})" if note else "")
    guess = did_you_mean(value, choices) if isinstance(value, str) else ""
    return f"{name}: must be one of {allowed}, got {value!r}{guess}"


def not_blank(name: str, value: str, example: str) -> str | None:
    """``name: must not be empty`` for a blank string."""
    return None if value.strip() else f"{name}: must not be empty ({example})"


def deepspeed_problem(path: str | None, base_dir: str) -> str | None:
    """A problem with ``system.deepspeed``: blank, or no such file (relative paths under ``base_dir``)."""
    if path is None:
        return None
    if not path.strip():
        return "deepspeed: must be the path of a DeepSpeed JSON config, or null for none"
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = Path(base_dir).expanduser() / resolved
    try:
        found = resolved.is_file()
    except OSError:  # a name the file system cannot even look up (too long, say)
        found = False
    if found:
        return None
    return (
        f"deepspeed: DeepSpeed config '{path}' not found (looked for {resolved}). "
        "Pass the path of an existing JSON file, or null for none"
    )
