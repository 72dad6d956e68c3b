"""What each ``koala-mock`` subcommand says of itself in ``--help``, in one table: the line in the
command list, the description, and the exit codes it returns (each a code with its default
meaning, or ``(code, "what it means here")``). The options stay with each subcommand's module.

>>> print(SUBCOMMANDS["demo"].epilog())
exit codes:
    0  the answer was streamed
    1  the provider raised (e.g. with --fault rate_limit)
    2  usage error: a bad flag or flag combination
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from mockserver.cli.exit_codes import ExitCode, HelpFormatter, epilog

__all__ = ["OUTPUT_FORMATS", "SUBCOMMANDS", "Subcommand", "add_format_option", "add_subcommand"]

#: The choices of ``--format`` (and of ``serve --log-format``); the first is the default.
OUTPUT_FORMATS = ("text", "json")

OK, FAILURE, USAGE = ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE
UNVERIFIED, BAD_INPUT = ExitCode.UNVERIFIED, ExitCode.BAD_INPUT
UNREACHABLE, INTERRUPTED = ExitCode.UNREACHABLE, ExitCode.INTERRUPTED


class Subcommand(NamedTuple):
    summary: str
    description: str
    exit_codes: tuple[ExitCode | tuple[ExitCode, str], ...]

    def epilog(self) -> str:
        return epilog(*self.exit_codes)


SUBCOMMANDS: dict[str, Subcommand] = {
    "serve": Subcommand(
        "run the mock server until Ctrl-C",
        "Run the mock koala.sh server. It prints the KOALA_API_ENDPOINT to use.",
        (
            (OK, "stopped by Ctrl-C or SIGTERM"),
            (FAILURE, "the server could not start (port taken, bad cassette directory...)"),
            (USAGE, "usage error: a bad flag, a non-loopback --host without --allow-remote"),
        ),
    ),
    "demo": Subcommand(
        "start the server in-process and stream an answer through the Koala provider",
        "Start the mock server in-process, ask it through koala.Koala, and print the answer "
        "token by token, then a summary from the server's journal.",
        (
            (OK, "the answer was streamed"),
            (FAILURE, "the provider raised (e.g. with --fault rate_limit)"),
            USAGE,
            INTERRUPTED,
        ),
    ),
    "record": Subcommand(
        "record a cassette from the live API (or another upstream)",
        "Send the request the Koala provider sends, stream the answer, and save it with every "
        "chunk's bytes and arrival time as a vcrpy cassette. Only the contract's headers are "
        "stored, and every credential is scrubbed, wherever it is echoed. Redirects are "
        "recorded, never followed.",
        (
            (OK, "recorded (or the cassette already held this request: replayed)"),
            (FAILURE, "nothing recorded (stream broke off, the record mode refused, write failed)"),
            USAGE,
            (BAD_INPUT, "bad input (--messages file, --upstream URL, messages refused)"),
            UNREACHABLE,
            (INTERRUPTED, "interrupted (Ctrl-C); nothing written"),
        ),
    ),
    "verify": Subcommand(
        "check that the upstream still answers like the cassettes (drift check)",
        "Send each cassette's request to the upstream and report, per cassette, what differs "
        "in the answer's shape: status, content type, event framing, the headers the client "
        "relies on, and the types of the data values (never the text). Redirects are compared, "
        "never followed.",
        (
            (OK, "no drift"),
            (FAILURE, "drift"),
            USAGE,
            (UNVERIFIED, "no drift, but some cassettes could not be verified (e.g. a 429)"),
            (
                BAD_INPUT,
                "no cassette to check, a broken one (the others are still checked), a bad "
                "--upstream",
            ),
            UNREACHABLE,
            INTERRUPTED,
        ),
    ),
    "audit": Subcommand(
        "score a Koala client on every fault and on fuzzed cassettes",
        "Start the mock server in-process and run a client against every named fault (with "
        "the variants that matter) and against fuzz seeds of every cassette; print a "
        "scorecard. Every failing run names the server and header that reproduce it.",
        (
            (OK, "the audit ran (and the score is at least --min-score)"),
            (FAILURE, "the score is below --min-score"),
            USAGE,
            (BAD_INPUT, "the --client or an --accept-error class cannot be loaded"),
            INTERRUPTED,
        ),
    ),
}


def add_subcommand(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """Subcommand ``name`` with its summary, description and exit codes from the table."""
    command = SUBCOMMANDS[name]
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=command.summary,
        description=command.description,
        epilog=command.epilog(),
        formatter_class=HelpFormatter,
    )
    return parser


def add_format_option(parser: Any, meaning: str, flag: str = "--format") -> None:
    """``flag``: one of :data:`OUTPUT_FORMATS`, ``text`` by default."""
    parser.add_argument(flag, choices=OUTPUT_FORMATS, default=OUTPUT_FORMATS[0], help=meaning)
