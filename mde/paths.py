"""Where MDE keeps each user's own files: ``$MDE_HOME`` (default ``~/.local/share/mde``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["mde_home"]


def mde_home() -> Path:
    """``$MDE_HOME``, defaulting to ``$XDG_DATA_HOME/mde`` (``~/.local/share/mde``).

    Ledgers and the signing identity live here; tests and separate roles on one machine point
    ``MDE_HOME`` elsewhere.
    """
    home = os.environ.get("MDE_HOME")
    if home:
        return Path(home)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data) / "mde"
