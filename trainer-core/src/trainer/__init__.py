"""trainer: fine-tuning for causal language models, built from plugins.

Importing this package is cheap: torch, transformers and datasets are imported
only by the functions that need them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trainer-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from trainer.hookspecs import PLUGIN_API_VERSION, hookimpl

__all__ = ["PLUGIN_API_VERSION", "__version__", "hookimpl"]
