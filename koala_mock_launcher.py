"""The ``koala-mock`` command's entry point, kept apart from the ``mockserver`` package.

Importing ``mockserver`` takes about 0.3 s (aiohttp and the rest); until ``serve`` installs its
own signal handlers, a SIGTERM or SIGINT would kill the process with -15 (or print a
KeyboardInterrupt traceback). So for ``serve`` this module, which imports only the standard
library, catches both signals first: a stop asked for before the server runs is a clean exit 0.
Other commands keep Python's default handling (the demo's Ctrl-C still exits 130).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = ["main"]


def _stop_before_serving(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _command(arguments: list[str]) -> str | None:
    return next((a for a in arguments if not a.startswith("-")), None)


def main() -> int:
    if _command(sys.argv[1:]) == "serve":  # serve replaces these once its loop runs
        signal.signal(signal.SIGTERM, _stop_before_serving)
        signal.signal(signal.SIGINT, _stop_before_serving)
    from mockserver.cli import main as run

    return run()
