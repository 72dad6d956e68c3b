"""``koala-mock audit``: score a Koala client's resilience on faults and fuzzed cassettes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from koala.sse import DEFAULT_MAX_EVENT_SIZE
from mockserver.audit.cases import MAX_TIMEOUT, Timing
from mockserver.audit.clients import ClientSpecError, load_client
from mockserver.audit.g4f_client import CHECKED_VERSION
from mockserver.audit.report import Scorecard, to_json, to_text
from mockserver.audit.runner import AuditSettings, recorded_streams, run_audit, seeds_for
from mockserver.cli.console import PROG
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.numbers import bounded
from mockserver.cli.subcommands import add_format_option, add_subcommand
from mockserver.config import default_cassette_dir

__all__ = [
    "DEFAULT_SEEDS",
    "DEFAULT_TIMEOUT",
    "add_audit_command",
    "event_bytes",
    "hang_limit",
    "percent",
    "read_seconds",
    "run_audit_command",
    "seed_count",
]

DEFAULT_SEEDS = 5
DEFAULT_TIMEOUT = 5.0
seed_count = bounded(int, "a whole number", minimum=0, maximum=1000)
hang_limit = bounded(float, "seconds", minimum=0.1, maximum=MAX_TIMEOUT)
percent = bounded(float, "a percentage", minimum=0.0, maximum=100.0)
read_seconds = bounded(float, "seconds", minimum=0.01, maximum=MAX_TIMEOUT)
event_bytes = bounded(int, "a number of bytes", minimum=1, maximum=64 * 1024 * 1024 - 1)


def add_audit_command(subparsers: Any) -> None:
    audit = add_subcommand(subparsers, "audit")
    audit.add_argument(
        "--client",
        default="koala",
        metavar="SPEC",
        help="koala (this project's provider, the default), g4f (the original gpt4free "
        f"provider; needs g4f, checked with {CHECKED_VERSION}), or module:callable (the "
        "current directory is on the import path) taking "
        "(api_endpoint, messages) and returning an async iterator, an iterator, an awaitable "
        "or text",
    )
    audit.add_argument(
        "--accept-error",
        action="append",
        default=[],
        metavar="module:Class",
        help="an exception class that counts as the documented error of any fault that "
        "expects one (repeatable; a class named like the koala.errors class always counts)",
    )
    audit.add_argument(
        "--cassettes",
        type=Path,
        metavar="DIR",
        help="cassettes whose streams are fuzzed (default: the bundled cassettes)",
    )
    audit.add_argument(
        "--seeds",
        type=seed_count,
        default=DEFAULT_SEEDS,
        metavar="N",
        help="fuzz seeds per cassette, 0..N-1 (default: %(default)s; 0: faults only)",
    )
    audit.add_argument(
        "--timeout",
        type=hang_limit,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help="a run that has not ended after S seconds is a hang; long waits are S+1 "
        "(default: %(default)s)",
    )
    audit.add_argument(
        "--read-timeout",
        type=read_seconds,
        metavar="R",
        help="the project's provider reads with read_timeout=R (default: S/2; below S); short "
        "waits are R/3",
    )
    audit.add_argument(
        "--max-event-size",
        type=event_bytes,
        default=DEFAULT_MAX_EVENT_SIZE,
        metavar="BYTES",
        help="the project's provider's max_event_size; a huge event just above it is one of "
        "the cases (default: %(default)s)",
    )
    add_format_option(
        audit, "text tables, or JSON for CI (schema koala-mock-audit/1, see the README)"
    )
    audit.add_argument(
        "--min-score",
        type=percent,
        metavar="X",
        help="exit 1 when the score (the mean of the family scores, in percent) is below X",
    )
    audit.set_defaults(func=run_audit_command)


def run_audit_command(args: argparse.Namespace) -> int:
    cassette_dir: Path | None = args.cassettes
    if cassette_dir is not None and not cassette_dir.is_dir():
        what = "does not exist" if not cassette_dir.exists() else "is not a directory"
        print(f"{PROG}: error: --cassettes {cassette_dir}: {what}", file=sys.stderr)
        return ExitCode.USAGE
    if cassette_dir is None:
        cassette_dir = default_cassette_dir()
    try:
        timing = Timing(args.timeout, args.read_timeout or args.timeout / 2, args.max_event_size)
    except ValueError as exc:
        print(f"{PROG}: error: --read-timeout: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        client = load_client(args.client, timing.limits, args.accept_error)
    except ClientSpecError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    seeds = list(seeds_for(args.seeds))
    if seeds and cassette_dir is not None:
        for why in recorded_streams(cassette_dir)[1]:
            print(f"{PROG}: not fuzzed: {why}", file=sys.stderr)
    settings = AuditSettings(client, cassette_dir, seeds, timing)
    try:
        results = asyncio.run(run_audit(settings))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    where = str(cassette_dir) if cassette_dir is not None else None
    card = Scorecard(client.name, settings.timing, seeds, where, results)
    if args.format == "json":
        print(json.dumps(to_json(card), indent=2, ensure_ascii=False, default=repr))
    else:
        print(to_text(card), end="")
    if args.min_score is not None and card.score < args.min_score:
        print(
            f"{PROG}: score {card.score:g}% is below --min-score {args.min_score:g}",
            file=sys.stderr,
        )
        return ExitCode.FAILURE
    return ExitCode.OK
