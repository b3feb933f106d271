"""Paths in a config: relative ones are resolved against ``system.base_dir``; hub ids pass through."""

from __future__ import annotations

import os
from pathlib import Path

from trainer.errors import TrainerError


def resolve(base: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` expanded, under ``base`` unless it is absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def source(base_dir: Path, name: str) -> str:
    """A local path resolved against ``base_dir``; hub ids pass through."""
    resolved = resolve(base_dir, name)
    return str(resolved) if exists(resolved) or not looks_like_hub_id(name) else name


def model_source(base_dir: Path, model_path: str) -> str:
    """The model directory to load, or the hub id; a missing local path is an error."""
    resolved = resolve(base_dir, model_path)
    if exists(resolved):
        return str(resolved)
    if looks_like_hub_id(model_path):
        return model_path
    raise TrainerError(
        f"model directory '{model_path}' not found. Pass an existing Hugging Face model directory "
        "(or a hub id such as Qwen/Qwen3-0.6B) with --model"
    )


def exists(path: Path) -> bool:
    """``path.exists()``, false for a name the file system cannot look up (too long, say)."""
    try:
        return path.exists()
    except OSError:
        return False


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` or ``name``: no leading ``.``, ``/`` or ``~`` and no file suffix."""
    parts = name.split("/")
    return len(parts) <= 2 and not name.startswith((".", "/", "~")) and Path(name).suffix == ""
