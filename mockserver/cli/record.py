"""``koala-mock record``: record one conversation from the upstream into a cassette file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from koala.api_key import API_KEY_ENV_VAR, ApiKey, resolve_api_key
from koala.errors import InvalidMessagesError, InvalidOptionError, KoalaError, StreamError
from koala.sse import EventStreamDecoder
from mockserver.cassettes.cassette import CassetteError
from mockserver.cassettes.record_mode import Action, RecordMode
from mockserver.cassettes.scrub import warn_no_scrub
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.messages_file import load_messages
from mockserver.cli.subcommands import add_subcommand
from mockserver.cli.upstream_options import (
    add_scrub_options,
    add_timeout_options,
    add_upstream_option,
    error,
    record_mode_option,
    scrub_policy,
    timeouts,
)
from mockserver.upstream.client import RecordingError, UpstreamUnreachableError, check_upstream_url
from mockserver.upstream.record import describe, record_conversation, resolve_model

__all__ = ["add_record_command", "run_record"]


def add_record_command(subparsers: Any) -> None:
    parser = add_subcommand(subparsers, "record")
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
    add_upstream_option(parser)
    parser.add_argument(
        "--keyed",
        action="store_true",
        help=f"send the keyed API's shape (Authorization: Bearer ${API_KEY_ENV_VAR}; the key is "
        "read from the environment only, never from the command line, and stored scrubbed)",
    )
    parser.add_argument(
        "--json-reply",
        action="store_true",
        help='ask for the JSON reply {"output": ...} (Accept: application/json)',
    )
    record_mode_option(parser, "once", "a cassette that exists is never re-recorded")
    parser.add_argument(
        "--force", action="store_true", help="the same as --record-mode all: overwrite the file"
    )
    add_scrub_options(parser)
    parser.add_argument("--description", default="", help="what the cassette shows")
    add_timeout_options(parser)
    parser.set_defaults(func=run_record)


def _messages(args: argparse.Namespace) -> list[Any]:
    if args.prompt is not None:
        return [{"role": "user", "content": args.prompt}]
    return load_messages(args.messages)


class Progress:
    """Shows the answer on ``out`` as it streams: the text of each event, else a byte count."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.decoder = EventStreamDecoder()
        self.readable = True
        self.received = 0

    async def __call__(self, data: bytes) -> None:
        self.received += len(data)
        if self.readable:
            try:
                values = self.decoder.feed(data)
            except StreamError:
                self.readable = False
                values = []
            text = "".join(v if isinstance(v, str) else f"[{v!r}]" for v in values)
            if text:
                self.out.write(text)
                self.out.flush()
                return
        if not self.readable:
            self.out.write(f"\r{self.received} bytes received")
            self.out.flush()

    def end(self) -> None:
        if self.received:
            self.out.write("\n")
            self.out.flush()


def _api_key(keyed: bool) -> ApiKey | None:
    if not keyed:
        return None
    key = resolve_api_key(None)
    if key is None:
        raise InvalidOptionError(f"--keyed needs the key in ${API_KEY_ENV_VAR}")
    return key


def run_record(args: argparse.Namespace) -> int:
    if args.force and args.record_mode not in (None, "all"):
        error(f"record: error: --force is --record-mode all; it contradicts --record-mode "
              f"{args.record_mode}")  # fmt: skip
        return ExitCode.USAGE
    try:
        check_upstream_url(args.upstream)
        messages = _messages(args)
    except ValueError as exc:
        error(str(exc))
        return ExitCode.BAD_INPUT
    try:
        api_key = _api_key(args.keyed)
    except KoalaError as exc:
        error(f"record: {exc}")
        return ExitCode.BAD_INPUT
    model, known = resolve_model(args.model)
    if not known:
        error(f"warning: the provider does not list the model {model!r}; sending it as given")
    policy = scrub_policy(args)
    if policy is None:
        warn_no_scrub()
    description = args.description or (
        f"recorded answer to {args.prompt!r}" if args.prompt else f"recorded from {args.messages}"
    )
    # The answer as it streams, on a terminal only (a pipe or a log gets just the summary).
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        recording = asyncio.run(
            record_conversation(
                messages,
                args.out,
                model=model,
                upstream=args.upstream,
                record_mode=RecordMode(args.record_mode or "once"),
                force=args.force,
                scrub=policy is not None,
                policy=policy,
                description=description,
                timeouts=timeouts(args),
                on_chunk=progress,
                api_key=api_key,
                json_reply=args.json_reply,
            )
        )
    except InvalidMessagesError as exc:
        error(f"bad messages: {exc}")
        return ExitCode.BAD_INPUT
    except KoalaError as exc:  # any other input the provider refuses
        error(f"record: {exc}")
        return ExitCode.BAD_INPUT
    except UpstreamUnreachableError as exc:
        error(f"record: {exc}")
        return ExitCode.UNREACHABLE
    except (RecordingError, CassetteError, OSError) as exc:
        error(f"record: {exc}")
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        error("record: interrupted; nothing was recorded")
        return ExitCode.INTERRUPTED
    finally:
        if progress is not None:
            progress.end()
    if recording.action is Action.REPLAY:
        error(f"record: {args.out} already holds this request; the upstream was not called")
    print(describe(recording))
    return ExitCode.OK
