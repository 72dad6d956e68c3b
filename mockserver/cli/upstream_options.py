"""Flags shared by the commands that talk to an upstream (``record``, ``verify``, the proxy)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from koala.provider import DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT, Koala
from mockserver.cassettes.record_mode import RECORD_MODES
from mockserver.cli.console import PROG
from mockserver.cli.numbers import bounded

if TYPE_CHECKING:  # imported where used: ``serve`` adds these flags but seldom records
    from mockserver.cassettes.scrub import ScrubPolicy
    from mockserver.upstream.client import Timeouts

__all__ = [
    "PROG",
    "add_scrub_options",
    "add_timeout_options",
    "add_upstream_option",
    "error",
    "record_mode_option",
    "scrub_policy",
    "timeouts",
]

positive_seconds = bounded(float, "seconds", above=0.0)


def error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def add_upstream_option(parser: Any) -> None:
    parser.add_argument(
        "--upstream",
        default=Koala.api_endpoint,
        metavar="URL",
        help="API endpoint (default: %(default)s); its query string is kept; user:password@ "
        "in it is sent as basic auth (unless the request has its own Authorization) and never "
        "printed",
    )


def add_timeout_options(parser: Any) -> None:
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        help="seconds for each whole answer (default: %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=positive_seconds,
        default=DEFAULT_READ_TIMEOUT,
        help="seconds to wait for each chunk (default: %(default)s)",
    )


def timeouts(args: argparse.Namespace) -> Timeouts:
    from mockserver.upstream.client import Timeouts

    return Timeouts(total=args.timeout, read=args.read_timeout)


def record_mode_option(parser: Any, default: str, meaning: str) -> None:
    parser.add_argument(
        "--record-mode",
        choices=RECORD_MODES,
        default=None,
        help=f"vcrpy's record modes: once (replay what the cassette holds; record only into a "
        f"new one), new_episodes (replay what it holds, record what is new), none (never call "
        f"the upstream), all (always call it and re-record). Default: {default} ({meaning})",
    )


def add_scrub_options(parser: Any) -> None:
    parser.add_argument(
        "--keep-header",
        action="append",
        default=[],
        metavar="NAME",
        help="also store this request or answer header (its value is still scrubbed); "
        "repeatable. Stored by default: the Koala contract's request headers and the answer "
        "headers replay needs (see cassettes/README.md)",
    )
    parser.add_argument(
        "--keep-query",
        action="append",
        default=[],
        metavar="NAME",
        help="store this query parameter's value as it is (every other one is scrubbed); "
        "repeatable",
    )
    parser.add_argument(
        "--no-scrub",
        action="store_true",
        help="store every header, cookie, token and the Visitor-ID as they are (unsafe)",
    )


def scrub_policy(args: argparse.Namespace) -> ScrubPolicy | None:
    """The policy the flags ask for; None with ``--no-scrub``."""
    if args.no_scrub:
        return None
    from mockserver.cassettes.scrub import ScrubPolicy

    return ScrubPolicy.of(args.keep_header, args.keep_query)
