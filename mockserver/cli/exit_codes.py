"""The exit codes of every ``koala-mock`` subcommand, in one place.

``2`` is argparse's code for a usage error, so it means only that; "the upstream did not answer"
has a code of its own (``5``). Each subcommand's ``--help`` ends with the codes it can return
(:func:`epilog`).

>>> int(ExitCode.UNREACHABLE), int(ExitCode.USAGE)
(5, 2)
>>> print(epilog(ExitCode.OK, ExitCode.USAGE))
exit codes:
    0  success
    2  usage error: a bad flag or flag combination
"""

from __future__ import annotations

import argparse
from enum import IntEnum

__all__ = ["ExitCode", "HelpFormatter", "epilog"]


class ExitCode(IntEnum):
    """What a ``koala-mock`` process returns to the shell."""

    #: The command did what was asked (``verify``: no drift).
    OK = 0
    #: It ran and failed: the server could not start, nothing was recorded, ``verify`` found drift.
    FAILURE = 1
    #: A bad flag or flag combination (argparse exits with 2 too).
    USAGE = 2
    #: ``verify``: nothing drifted, but some cassettes could not be verified (e.g. a 429 today).
    UNVERIFIED = 3
    #: Bad input named by a flag: a ``--messages`` file, an ``--upstream`` URL, a cassette.
    BAD_INPUT = 4
    #: The upstream did not answer (refused, DNS, TLS, timeout before the status line).
    UNREACHABLE = 5
    #: Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130


#: The default meaning of each code in ``--help``; a subcommand may say it more precisely.
MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "a runtime failure",
    ExitCode.USAGE: "usage error: a bad flag or flag combination",
    ExitCode.UNVERIFIED: "some cassettes could not be verified",
    ExitCode.BAD_INPUT: "bad input",
    ExitCode.UNREACHABLE: "the upstream did not answer",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an ``exit codes:`` epilog keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("exit codes:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def epilog(*codes: ExitCode | tuple[ExitCode, str]) -> str:
    """The ``exit codes:`` block of a subcommand's ``--help`` (kept as is by HelpFormatter).

    Each item is a code (its default meaning) or ``(code, "what it means here")``.
    """
    lines = ["exit codes:"]
    for item in codes:
        code, meaning = item if isinstance(item, tuple) else (item, MEANINGS[item])
        lines.append(f"  {int(code):>3}  {meaning}")
    return "\n".join(lines)
