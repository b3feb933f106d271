"""Where the original single-package design kept the ``regime3`` profile.

The profile now ships in its own distribution, ``trainer-profile-regime3``;
this module keeps the old import path working when that package is installed.
"""

from __future__ import annotations

try:
    from trainer_profile_regime3 import Regime3Profile
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the regime3 profile lives in its own package now. Install it with: "
        "pip install trainer-profile-regime3"
    ) from exc

__all__ = ["Regime3Profile"]
