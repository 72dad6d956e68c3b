"""``koala-mock verify``: does the upstream still answer the way the cassettes recorded it?

Each cassette's result is printed as soon as it is known. A cassette that cannot be loaded is
reported and the others are still checked (the exit code says a cassette was broken).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from koala.api_key import API_KEY_ENV_VAR
from mockserver.cassettes.cassette import (
    CASSETTE_SUFFIXES,
    Cassette,
    CassetteError,
    load_cassette,
    load_cassette_dir,
)
from mockserver.cassettes.scrub import mask_url
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.subcommands import add_format_option, add_subcommand
from mockserver.cli.upstream_options import (
    add_timeout_options,
    add_upstream_option,
    error,
    timeouts,
)
from mockserver.config import default_cassette_dir
from mockserver.upstream.client import check_upstream_url
from mockserver.upstream.verify import (
    DRIFT,
    UNVERIFIED,
    Verdict,
    VerifyUnreachableError,
    counts,
    format_verdict,
    summary_line,
    verdict_json,
    verify_cassettes,
)
from mockserver.upstream.words import plural

__all__ = ["add_verify_command", "run_verify", "verify_exit_code"]


def add_verify_command(subparsers: Any) -> None:
    parser = add_subcommand(subparsers, "verify")
    parser.add_argument(
        "cassettes",
        nargs="*",
        type=Path,
        metavar="CASSETTE",
        help="cassette files or directories (default: the bundled cassettes/)",
    )
    add_upstream_option(parser)
    add_timeout_options(parser)
    add_format_option(
        parser, "text: each result as it finishes (default); json: one JSON document at the end"
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


def verify_exit_code(verdicts: Sequence[Verdict]) -> ExitCode:
    """FAILURE on any drift; else UNVERIFIED if some cassettes could not be verified; else OK."""
    if any(v.outcome == DRIFT for v in verdicts):
        return ExitCode.FAILURE
    if any(v.outcome == UNVERIFIED for v in verdicts):
        return ExitCode.UNVERIFIED
    return ExitCode.OK


def _printed(verdict: Verdict) -> None:
    print(format_verdict(verdict), flush=True)


def run_verify(args: argparse.Namespace) -> int:
    as_json = args.format == "json"
    try:
        check_upstream_url(args.upstream)
    except ValueError as exc:
        error(f"verify: {exc}")
        return ExitCode.BAD_INPUT
    cassettes, broken = _load(list(args.cassettes))
    for problem in broken:
        error(f"verify: {problem}")
    if not cassettes:
        if not broken:
            error("verify: no cassettes to check")
        return _finish(args, as_json, [], broken, ExitCode.BAD_INPUT, "")
    interactions = sum(len(c.interactions) for c in cassettes)
    if not as_json:
        print(
            f"verifying {plural(len(cassettes), 'cassette')} "
            f"({plural(interactions, 'interaction')}) against {mask_url(args.upstream)}",
            flush=True,
        )
    unreachable = ""
    try:
        verdicts = asyncio.run(
            verify_cassettes(
                cassettes,
                args.upstream,
                timeouts=timeouts(args),
                api_key=os.environ.get(API_KEY_ENV_VAR) or None,
                on_verdict=None if as_json else _printed,
            )
        )
        code = verify_exit_code(verdicts)
    except VerifyUnreachableError as exc:
        error(f"verify: {exc}")
        verdicts, code, unreachable = exc.verdicts, ExitCode.UNREACHABLE, str(exc)
    except KeyboardInterrupt:
        error("verify: interrupted")
        return ExitCode.INTERRUPTED
    if broken and code is not ExitCode.UNREACHABLE:
        code = ExitCode.BAD_INPUT
    return _finish(args, as_json, verdicts, broken, code, unreachable)


def _finish(
    args: argparse.Namespace,
    as_json: bool,
    verdicts: Sequence[Verdict],
    broken: Sequence[CassetteError],
    code: ExitCode,
    unreachable: str,
) -> int:
    if as_json:
        document = {
            "upstream": mask_url(args.upstream),
            "results": [verdict_json(v) for v in verdicts],
            "broken": [{"path": str(e.path), "problem": e.problem} for e in broken],
            "unreachable": unreachable or None,
            "summary": {**counts(verdicts), "broken": len(broken)},
            "exit_code": int(code),
        }
        print(json.dumps(document, indent=2), flush=True)
    elif verdicts or broken:
        line = summary_line(verdicts)
        if broken:
            line += f", {plural(len(broken), 'broken cassette')}"
        print(line, flush=True)
    return code
