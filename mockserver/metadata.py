"""The installed package's version, read once from its metadata (pyproject.toml's ``version``).

>>> VERSION == "unknown" or VERSION[0].isdigit()
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "VERSION"]

DISTRIBUTION = "koala-harness"


def _installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


VERSION = _installed_version()
