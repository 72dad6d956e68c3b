"""Where cassettes live: the bundled set (a source checkout's ``cassettes/`` or the installed
package data), the ``$KOALA_MOCK_CASSETTES`` override, and the recording proxy's default."""

from __future__ import annotations

import os
from pathlib import Path

from koala import testing as _koala_testing

__all__ = [
    "CASSETTES_ENV_VAR",
    "DEFAULT_CASSETTE_DIR",
    "DEFAULT_RECORD_DIR",
    "SOURCE_CASSETTE_DIR",
    "bundled_cassette_dir",
    "default_cassette_dir",
]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
CASSETTES_ENV_VAR = "KOALA_MOCK_CASSETTES"
#: The source checkout's ``cassettes/`` (the single source of the bundled cassettes).
SOURCE_CASSETTE_DIR = _PACKAGE_DIR.parent / "cassettes"
#: Where the recording proxy saves cassettes without a ``record_dir``: ``./cassettes`` in the
#: working directory (never the installed package's directory).
DEFAULT_RECORD_DIR = Path("cassettes")


def bundled_cassette_dir(package_dir: Path = _PACKAGE_DIR) -> Path:
    """The cassettes shipped with koala-harness: the source checkout's ``cassettes/`` when the
    ``mockserver`` package at ``package_dir`` runs from a checkout (an editable install), else
    the installed package data ``mockserver/bundled_cassettes`` (the rule lives in
    :func:`koala.testing.bundled_cassette_dir`, which ``koala_vcr`` uses too)."""
    return _koala_testing.bundled_cassette_dir(package_dir.parent)


#: Where the bundled cassettes are in this installation.
DEFAULT_CASSETTE_DIR = bundled_cassette_dir()


def default_cassette_dir() -> Path:
    """``$KOALA_MOCK_CASSETTES`` when set (read on every call), else the bundled cassettes."""
    from_env = os.environ.get(CASSETTES_ENV_VAR)
    return Path(from_env) if from_env else DEFAULT_CASSETTE_DIR
