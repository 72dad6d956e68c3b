"""``koala-mock record`` and ``koala-mock verify``: argparse subcommands (cli.py registers them).

Exit codes (:class:`~mockserver.cli.exit_codes.ExitCode`) of ``record``: 0 recorded; 1 nothing
recorded (the stream broke off, the file exists without ``--force``, the file could not be
written); 4 bad input (``--messages`` file, ``--upstream`` URL); 5 the upstream did not answer.
Ctrl-C: 130, nothing written.

Exit codes of ``verify``: 0 no drift; 1 drift; 3 no drift, but some cassettes could not be
verified (a situational answer such as a 429); 4 no cassette to check or a cassette that cannot
be loaded; 5 the upstream did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from koala.errors import InvalidMessagesError, KoalaError
from koala.provider import DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT, Koala
from mockserver.cassettes.cassette import (
    CASSETTE_SUFFIXES,
    Cassette,
    CassetteError,
    load_cassette,
    load_cassette_dir,
)
from mockserver.cassettes.scrub import warn_no_scrub
from mockserver.cli.exit_codes import ExitCode, HelpFormatter, epilog
from mockserver.cli.messages_file import load_messages
from mockserver.cli.numbers import bounded
from mockserver.config import default_cassette_dir
from mockserver.upstream.recording import (
    RecordingError,
    UpstreamUnreachableError,
    check_upstream_url,
    describe,
    record_conversation,
    resolve_model,
)
from mockserver.upstream.verify import (
    DRIFT,
    UNVERIFIED,
    Verdict,
    VerifyUnreachableError,
    report,
    verify_cassettes,
)

PROG = "koala-mock"
RECORD_EXIT_CODES = epilog(
    (ExitCode.OK, "recorded"),
    (ExitCode.FAILURE, "nothing recorded (stream broke off, file exists, write failed)"),
    ExitCode.USAGE,
    (ExitCode.BAD_INPUT, "bad input (--messages file, --upstream URL, messages refused)"),
    ExitCode.UNREACHABLE,
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C); nothing written"),
)
VERIFY_EXIT_CODES = epilog(
    (ExitCode.OK, "no drift"),
    (ExitCode.FAILURE, "drift"),
    ExitCode.USAGE,
    (ExitCode.UNVERIFIED, "no drift, but some cassettes could not be verified (e.g. a 429)"),
    (ExitCode.BAD_INPUT, "no cassette to check, a broken one, or a bad --upstream URL"),
    ExitCode.UNREACHABLE,
    ExitCode.INTERRUPTED,
)


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


positive_seconds = bounded(float, "seconds", above=0.0)


# ----------------------------------------------------------------------------- record


def add_record_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record a cassette from the live API (or another upstream)",
        description="Send the request the Koala provider sends, stream the answer, and save it "
        "with every chunk's bytes and arrival time as a vcrpy cassette. Secrets are scrubbed.",
        epilog=RECORD_EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.yaml")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", metavar="TEXT", help="one user message")
    what.add_argument(
        "--messages",
        type=Path,
        metavar="FILE.json",
        help='a JSON list of {"role": ..., "content": ...} messages',
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model (default: the provider's default); aliases resolve as the provider resolves "
        "them, a name the provider does not list is sent as given, with a warning",
    )
    parser.add_argument(
        "--upstream",
        default=Koala.api_endpoint,
        metavar="URL",
        help="API endpoint (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing cassette")
    parser.add_argument(
        "--no-scrub", action="store_true", help="keep cookies, tokens and the Visitor-ID (unsafe)"
    )
    parser.add_argument("--description", default="", help="what the cassette shows")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        help="seconds for the whole answer (default: %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=positive_seconds,
        default=DEFAULT_READ_TIMEOUT,
        help="seconds to wait for each chunk (default: %(default)s)",
    )
    parser.set_defaults(func=run_record)


def _messages(args: argparse.Namespace) -> list[Any]:
    if args.prompt is not None:
        return [{"role": "user", "content": args.prompt}]
    return load_messages(args.messages)


def run_record(args: argparse.Namespace) -> int:
    try:
        check_upstream_url(args.upstream)
        messages = _messages(args)
    except ValueError as exc:
        _error(str(exc))
        return ExitCode.BAD_INPUT
    model, known = resolve_model(args.model)
    if not known:
        _error(f"warning: the provider does not list the model {model!r}; sending it as given")
    scrub = not args.no_scrub
    if not scrub:
        warn_no_scrub()
    description = args.description or (
        f"recorded answer to {args.prompt!r}" if args.prompt else f"recorded from {args.messages}"
    )
    try:
        capture = asyncio.run(
            record_conversation(
                messages,
                args.out,
                model=model,
                upstream=args.upstream,
                force=args.force,
                scrub=scrub,
                description=description,
                timeout=args.timeout,
                read_timeout=args.read_timeout,
            )
        )
    except InvalidMessagesError as exc:
        _error(f"bad messages: {exc}")
        return ExitCode.BAD_INPUT
    except KoalaError as exc:  # any other input the provider refuses
        _error(f"record: {exc}")
        return ExitCode.BAD_INPUT
    except UpstreamUnreachableError as exc:
        _error(f"record: {exc}")
        return ExitCode.UNREACHABLE
    except (RecordingError, CassetteError, OSError) as exc:
        _error(f"record: {exc}")
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        _error("record: interrupted; nothing was recorded")
        return ExitCode.INTERRUPTED
    print(describe(capture, args.out))
    return ExitCode.OK


# ----------------------------------------------------------------------------- verify


def add_verify_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check that the upstream still answers like the cassettes (drift check)",
        description="Send each cassette's request to the upstream and report, per cassette, "
        "what differs in the answer's shape: status, content type, event framing, the headers "
        "the client relies on, and the types of the data values (never the text).",
        epilog=VERIFY_EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "cassettes",
        nargs="*",
        type=Path,
        metavar="CASSETTE",
        help="cassette files or directories (default: the bundled cassettes/)",
    )
    parser.add_argument(
        "--upstream",
        default=Koala.api_endpoint,
        metavar="URL",
        help="API endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=120.0,
        help="seconds per request (default: %(default)s)",
    )
    parser.set_defaults(func=run_verify)


def _load(paths: list[Path]) -> tuple[list[Cassette], list[CassetteError]]:
    if not paths:
        paths = [default_cassette_dir()]
    cassettes: list[Cassette] = []
    errors: list[CassetteError] = []
    for path in paths:
        if path.is_dir():
            found, broken = load_cassette_dir(path)
            cassettes.extend(found)
            errors.extend(broken)
        elif path.suffix.lower() in CASSETTE_SUFFIXES or path.exists():
            try:
                cassettes.append(load_cassette(path))
            except CassetteError as exc:
                errors.append(exc)
        else:
            errors.append(CassetteError(path, "no such cassette file or directory"))
    return cassettes, errors


def run_verify(args: argparse.Namespace) -> int:
    try:
        check_upstream_url(args.upstream)
    except ValueError as exc:
        _error(f"verify: {exc}")
        return ExitCode.BAD_INPUT
    cassettes, errors = _load(list(args.cassettes))
    for error in errors:
        _error(f"verify: {error}")
    if errors:
        return ExitCode.BAD_INPUT
    if not cassettes:
        _error("verify: no cassettes to check")
        return ExitCode.BAD_INPUT
    print(f"verifying {len(cassettes)} cassettes against {args.upstream}", flush=True)
    try:
        verdicts = asyncio.run(verify_cassettes(cassettes, args.upstream, timeout=args.timeout))
    except VerifyUnreachableError as exc:
        _error(f"verify: {exc}")
        return ExitCode.UNREACHABLE
    except KeyboardInterrupt:
        _error("verify: interrupted")
        return ExitCode.INTERRUPTED
    print(report(verdicts))
    return verify_exit_code(verdicts)


def verify_exit_code(verdicts: list[Verdict]) -> ExitCode:
    """FAILURE on any drift; else UNVERIFIED if some cassettes could not be verified; else OK."""
    if any(v.outcome == DRIFT for v in verdicts):
        return ExitCode.FAILURE
    if any(v.outcome == UNVERIFIED for v in verdicts):
        return ExitCode.UNVERIFIED
    return ExitCode.OK
