"""``koala-mock``: serve the mock server, run the demo, and (when present) record and verify.

Exit codes (:class:`~mockserver.cli.exit_codes.ExitCode`): 0 success, 1 a runtime failure (port
taken, server could not start, the provider raised in the demo), 2 a usage error (bad flag,
non-loopback host without ``--allow-remote``, missing cassette directory), 130 Ctrl-C in the demo.
Each subcommand's ``--help`` lists its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from koala import Koala
from koala.api_key import ApiKey, check_api_key
from koala.errors import InvalidOptionError
from mockserver.cassettes.files import DEFAULT_MAX_CASSETTE_BYTES, size_text
from mockserver.cli.console import PROG, AcceptErrorReporter, Console, log_records_as
from mockserver.cli.exit_codes import ExitCode, HelpFormatter, epilog
from mockserver.cli.numbers import bounded
from mockserver.cli.subcommands import add_format_option, add_subcommand
from mockserver.cli.upstream_options import add_scrub_options, record_mode_option
from mockserver.config import (
    API_KEY_ENV_VAR,
    CASSETTES_ENV_VAR,
    DEFAULT_JOURNAL_MAX_BYTES,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_GENERATED_BYTES,
    DEFAULT_RECORD_DIR,
    MAX_KEEPALIVE_TIMEOUT,
    MAX_LATENCY_SECONDS,
    MIN_JOURNAL_MAX_BYTES,
    MODES,
    MockConfig,
)
from mockserver.errors import MockServerError
from mockserver.server.parser_errors import parser_errors_as_one_line
from mockserver.testing.embedded import ServerAddress, is_loopback, start_server
from mockserver.upstream.words import plural
from mockserver.wire.fuzz import MAX_SEED
from mockserver.wire.log_text import escape

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "ADMIN_TOKEN_ENV_VAR",
    "CONSOLE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BYTE_SIZE",
    "SERVE_SHUTDOWN_TIMEOUT",
    "SERVING_GC_THRESHOLD",
    "UsageError",
    "build_parser",
    "byte_size",
    "freeze_start_up_objects",
    "fuzz_seed",
    "keepalive_seconds",
    "latency_seconds",
    "main",
    "non_negative_float",
    "port_number",
    "positive_int",
    "run_demo_command",
    "run_serve",
    "tune_garbage_collector",
]

ADMIN_TOKEN_ENV_VAR = "KOALA_MOCK_ADMIN_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
SERVE_SHUTDOWN_TIMEOUT = 2.0
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class UsageError(MockServerError):
    """A flag combination the CLI refuses (exit code 2, ``ExitCode.USAGE``)."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_named(arguments))
    args = parser.parse_args(arguments)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE


#: Each command's parser, added by a function (record, verify and audit import their modules).
_COMMANDS: dict[str, Callable[[Any], None]] = {}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with a known ``command``, only that command's (help texts unchanged).

    ``serve`` starts sooner without the modules of record, verify and audit, which building
    their parsers imports.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A local stand-in for the koala.sh chat API, for development and tests.",
        epilog=epilog(ExitCode.OK, ExitCode.USAGE),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command in _COMMANDS:
        _COMMANDS[command](subparsers)
    else:
        for add_command in _COMMANDS.values():
            add_command(subparsers)
    return parser


def _command_named(arguments: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (the top-level options,
    --help and --version, take no value)."""
    return next((word for word in arguments if not word.startswith("-")), None)


class _VersionAction(argparse.Action):
    """``--version``: reads the package metadata only when asked (``serve`` starts without it)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from mockserver.metadata import VERSION

        print(f"{parser.prog} {VERSION}")  # on stdout, as argparse's own version action
        parser.exit()


# -- shared server flags --------------------------------------------------------------------------


non_negative_float = bounded(float, "a number", minimum=0.0)
port_number = bounded(int, "a port number", minimum=0, maximum=65535)
positive_int = bounded(int, "a whole number", minimum=1)
#: Sizes in bytes; anything over 1 TiB is a typo, not a limit (the flags size memory and files).
MAX_BYTE_SIZE = 2**40
byte_size = bounded(int, "a number of bytes", minimum=1, maximum=MAX_BYTE_SIZE)
#: The range the server accepts in the X-Koala-Mock-Seed header, so a run can be reproduced.
fuzz_seed = bounded(int, "a whole number", minimum=0, maximum=MAX_SEED)
keepalive_seconds = bounded(float, "seconds", minimum=0.1, maximum=MAX_KEEPALIVE_TIMEOUT)
latency_seconds = bounded(float, "seconds", minimum=0.0, maximum=MAX_LATENCY_SECONDS)


def _add_response_options(parser: argparse.ArgumentParser) -> None:
    """Flags that choose how the server answers (shared by ``serve`` and ``demo``)."""
    parser.add_argument(
        "--cassettes",
        metavar="DIR",
        type=Path,
        help="directory of vcrpy YAML cassettes to replay (default: the bundled cassettes/, "
        "or $KOALA_MOCK_CASSETTES)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="auto: a matching cassette, else a synthetic answer (default); replay: cassettes "
        "only, 404 on no match; synthetic: never replay; fuzz: auto plus seeded stream fuzzing",
    )
    parser.add_argument(
        "--seed",
        type=fuzz_seed,
        metavar="N",
        help=f"fuzz mode only: the seed (0..{MAX_SEED}) of the stream rewriting, the same "
        "for every request (default: a new random seed per request; each answer names its seed "
        "in the "
        "X-Koala-Mock-Seed header, which a request can send back to reproduce it)",
    )
    parser.add_argument(
        "--latency",
        type=latency_seconds,
        metavar="SECONDS",
        help="delay between events when a cassette has no recorded timing "
        f"(at most {MAX_LATENCY_SECONDS:g})",
    )
    parser.add_argument(
        "--speed",
        type=non_negative_float,
        metavar="FACTOR",
        help="scale the timing: 2 = twice as fast, 0 = as fast as possible",
    )
    parser.add_argument(
        "--fault",
        metavar="NAME[;k=v]",
        help="answer every request with this fault (e.g. rate_limit, truncate;events=3) unless "
        "a request asks for another",
    )


def _check_cassette_dir(given_as: str, directory: Path) -> None:
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise UsageError(f"{given_as}: {what}")


def _upstream(url: str) -> str:
    """``url`` if the recording proxy can forward to it (checked now, not on every request)."""
    from mockserver.upstream.client import check_upstream_url  # late: loads aiohttp's client

    try:
        return check_upstream_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _record_dir(directory: Path) -> Path:
    """``directory``, created if missing (a UsageError when it cannot be)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--record-dir {directory}: cannot create it ({exc.strerror or exc})"
        ) from None
    return directory


#: Flags that mean nothing to the recording proxy, and why (refused with --record).
_NOT_WITH_RECORD = {
    "cassettes": "the proxy replays from and records into --record-dir",
    "mode": "the proxy answers from the upstream and --record-dir, as --record-mode says",
    "seed": "fuzzing applies per request there (send X-Koala-Mock-Seed)",
    "latency": "recorded answers keep their own timing",
    "fault": "every answer would be the fault and nothing would be recorded "
    "(send X-Koala-Mock-Fault to get one)",
    "strict": "the proxy forwards every request as the client sent it",
}


def _refuse_with_record(args: argparse.Namespace) -> None:
    for flag, why in _NOT_WITH_RECORD.items():
        value = getattr(args, flag, None)
        if value is not None and value is not False:
            raise UsageError(f"--{flag} does not apply with --record: {why}")


def _config_from_args(args: argparse.Namespace) -> MockConfig:
    """A ``MockConfig`` from the flags given; flags left out keep the config's defaults."""
    options: dict[str, Any] = {}
    if getattr(args, "record", False):
        _refuse_with_record(args)
    cassettes: Path | None = getattr(args, "cassettes", None)
    if cassettes is not None:
        _check_cassette_dir(f"--cassettes {cassettes}", cassettes)
        options["cassette_dir"] = cassettes
    elif os.environ.get(CASSETTES_ENV_VAR):
        from_env = Path(os.environ[CASSETTES_ENV_VAR])
        _check_cassette_dir(f"${CASSETTES_ENV_VAR}={from_env}", from_env)
    for flag in (
        "mode",
        "seed",
        "latency",
        "speed",
        "max_body_size",
        "max_cassette_size",
        "keepalive_timeout",
        "journal_max_bytes",
        "max_generated_bytes",
    ):
        value = getattr(args, flag, None)
        if value is not None:
            options[flag] = value
    if getattr(args, "strict", False):
        options["strict"] = True
    if getattr(args, "fault", None) is not None:
        options["default_fault"] = args.fault
    token = _admin_token(args)
    if token is not None:
        options["admin_token"] = token
    if hasattr(args, "api_key"):
        key = _api_key(args.api_key)
        if key is not None:
            options["api_key"] = key
    if getattr(args, "record", False):
        options["record_upstream"] = _upstream(args.upstream or Koala.api_endpoint)
        options["record_dir"] = _record_dir(args.record_dir or DEFAULT_RECORD_DIR.resolve())
        options["scrub"] = not args.no_scrub
        options["keep_headers"] = tuple(args.keep_header)
        options["keep_query"] = tuple(args.keep_query)
        if args.record_mode is not None:
            options["record_mode"] = args.record_mode
    else:
        for flag in (
            "upstream",
            "record_dir",
            "no_scrub",
            "record_mode",
            "keep_header",
            "keep_query",
        ):
            if getattr(args, flag, None):
                name = "--" + flag.replace("_", "-")
                raise UsageError(f"{name} only applies with --record")
    try:
        return MockConfig(**options)
    except ValueError as exc:  # e.g. an unknown --fault name
        raise UsageError(str(exc)) from None


def _admin_token(args: argparse.Namespace) -> str | None:
    """--admin-token, else $KOALA_MOCK_ADMIN_TOKEN, else (with --allow-remote) a new random one."""
    token: str | None = getattr(args, "admin_token", None)
    if token is None:
        token = os.environ.get(ADMIN_TOKEN_ENV_VAR) or None
    if token is None and getattr(args, "allow_remote", False):
        import secrets

        token = secrets.token_urlsafe(24)
        args.generated_admin_token = True
    return token


def _api_key(given: str | None) -> ApiKey | None:
    """``--api-key``, else ``$KOALA_MOCK_API_KEY``, else None; the error never quotes the key."""
    source = "--api-key"
    if given is None:
        given = os.environ.get(API_KEY_ENV_VAR) or None
        source = f"${API_KEY_ENV_VAR}"
    if given is None:
        return None
    try:
        return ApiKey(check_api_key(given, source))
    except InvalidOptionError as exc:
        raise UsageError(str(exc)) from None


# -- serve ----------------------------------------------------------------------------------------


def _add_serve_command(subparsers: Any) -> None:
    serve = add_subcommand(subparsers, "serve")
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (the chat API has no authentication; the "
        "admin API then needs a token: --admin-token, or one generated and printed at start)",
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"every /__admin/* call needs 'Authorization: Bearer TOKEN' (default: "
        f"${ADMIN_TOKEN_ENV_VAR}; with --allow-remote and neither, a random token is generated "
        "and printed)",
    )
    _add_response_options(serve)
    serve.add_argument(
        "--strict",
        action="store_true",
        help="reject requests whose headers deviate from the browser headers (422)",
    )
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require this key of keyed requests (Authorization: Bearer KEY), else a 401 "
        f"(default: ${API_KEY_ENV_VAR}; none: any key). The environment variable keeps the key "
        "out of the process list",
    )
    serve.add_argument(
        "--max-body-size",
        type=byte_size,
        metavar="BYTES",
        help="larger request bodies get a 413",
    )
    serve.add_argument(
        "--max-cassette-size",
        type=byte_size,
        metavar="BYTES",
        help=f"skip cassette files larger than this, unread (default: "
        f"{DEFAULT_MAX_CASSETTE_BYTES} = {size_text(DEFAULT_MAX_CASSETTE_BYTES)})",
    )
    serve.add_argument(
        "--max-generated-bytes",
        type=byte_size,
        metavar="BYTES",
        help="bytes of generated fault answers (huge_event, split_writes) being sent at once, at "
        f"most; past it a request gets a JSON 503 (default: {DEFAULT_MAX_GENERATED_BYTES:,})",
    )
    serve.add_argument(
        "--keepalive-timeout",
        type=keepalive_seconds,
        metavar="SECONDS",
        help=f"close a keep-alive connection idle this long (default: "
        f"{DEFAULT_KEEPALIVE_TIMEOUT:g}; at most {MAX_KEEPALIVE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--journal-max-bytes",
        type=bounded(
            int, "a number of bytes", minimum=MIN_JOURNAL_MAX_BYTES, maximum=MAX_BYTE_SIZE
        ),
        metavar="BYTES",
        help="the journal keeps at most this many bytes of request bodies, headers and response "
        f"values, dropping the oldest entries first (default: {DEFAULT_JOURNAL_MAX_BYTES}, "
        "64 MiB; the journal also keeps at most its newest 10,000 entries)",
    )
    add_format_option(
        serve, "one log line per request on stderr (default: %(default)s)", flag="--log-format"
    )
    serve.add_argument(
        "--quiet",
        action="store_true",
        help="no per-request log lines on stderr (nor the one-line notes on malformed HTTP)",
    )
    record = serve.add_argument_group("recording proxy")
    record.add_argument(
        "--record",
        action="store_true",
        help="forward requests to --upstream, stream the answer through and save cassettes",
    )
    record.add_argument(
        "--upstream", metavar="URL", help=f"upstream to record from (default: {Koala.api_endpoint})"
    )
    record.add_argument(
        "--record-dir",
        type=Path,
        metavar="DIR",
        help="where recorded cassettes go, created if missing (default: ./cassettes in the "
        "current directory)",
    )
    record_mode_option(record, "new_episodes", "replay what --record-dir holds, record what is new")
    add_scrub_options(record)
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    CONSOLE.json = args.log_format == "json"
    host: str = args.host
    if not is_loopback(host):
        if not args.allow_remote:
            raise UsageError(
                f"--host {host} is not a loopback address: anyone who can reach it could use "
                "this unauthenticated mock. Pass --allow-remote to bind it anyway."
            )
        _warn(
            f"binding {host}, reachable from other machines; the chat API has no authentication "
            "(the admin API needs the admin token)"
        )
    config = _config_from_args(args)
    if args.record and args.no_scrub:
        _warn("--no-scrub: recorded cassettes will keep cookies, tokens and the Visitor-ID")
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(AcceptErrorReporter(CONSOLE))
    handler = log_records_as(args.log_format)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with parser_errors_as_one_line("", quiet=args.quiet, escape=not CONSOLE.json):
            return loop.run_until_complete(_serve(config, host, args.port, args))
    except KeyboardInterrupt:  # where the loop cannot install signal handlers (Windows)
        return ExitCode.OK
    finally:
        loop.close()  # (it puts back the default handlers of the signals it handled)
        _ignore_stop_signals()  # a second Ctrl-C or SIGTERM during the exit changes nothing
        root.removeHandler(handler)


async def _serve(config: MockConfig, host: str, port: int, args: argparse.Namespace) -> int:
    from mockserver.server.access_log import flush_access_log, install_access_log
    from mockserver.server.app import create_app

    stop = asyncio.Event()
    _on_signals(stop)
    try:
        app = create_app(config)
    except Exception as exc:
        CONSOLE.error(f"could not set up the server: {_describe(exc)}")
        return ExitCode.FAILURE
    log_class = None if args.quiet else install_access_log(app, args.log_format)
    try:
        runner, address = await start_server(
            app,
            host,
            port,
            shutdown_timeout=SERVE_SHUTDOWN_TIMEOUT,
            access_log_class=log_class,
        )
    except OSError as exc:
        CONSOLE.error(_bind_error(host, port, exc))
        return ExitCode.FAILURE
    except Exception as exc:
        CONSOLE.error(f"could not start the server: {_describe(exc)}")
        return ExitCode.FAILURE
    # Announce only when ready: the first request after the banner finds the cassettes loaded.
    _report_cassettes(app, config)
    tune_garbage_collector()
    _print_banner(address, config, sys.stdout)
    if getattr(args, "generated_admin_token", False):
        print(
            f"{PROG}: admin token (send 'Authorization: Bearer TOKEN' to /__admin/*): "
            f"{config.admin_token}",
            file=sys.stdout,
        )
        # The fragment never leaves the browser: the page keeps the token for its own calls.
        print(
            f"{PROG}: live journal with the token: "
            f"{_loopback(address).url}/__admin/ui#token={config.admin_token}",
            file=sys.stdout,
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        flush_access_log(app)  # the lines of the requests before the signal come first
        CONSOLE.note("shutting down")
        _ignore_stop_signals()  # one clean shutdown: more signals change nothing
        await runner.cleanup()  # flushes the lines of the requests it lets finish
    return ExitCode.OK


def freeze_start_up_objects() -> None:
    """Keep what start-up made (modules, cassettes, plans: it lives as long as the process) out
    of the garbage collector's full collections from now on.

    With 10,000 journal entries alive, full collections run every few ten thousand requests,
    and each walked every start-up object again (about 0.1 s; measured over 30,000 replays:
    5.8 us of collection per request, 2.6 us frozen). ``serve`` only: ``create_app`` also runs
    inside users' test processes, whose collector is theirs. No ``gc.collect()`` first: it
    would delay the first answer, and what garbage is frozen is a one-off few kilobytes.
    """
    gc.freeze()


#: The young generation's threshold while serving (CPython's default: 700 allocations).
SERVING_GC_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """What ``serve`` does to the garbage collector once it has started: freeze the start-up
    objects (:func:`freeze_start_up_objects`) and collect the young generation less often.

    Each young collection walks every object still alive that was made since the last one; with
    many connections open, that is every open request's handles, contexts and coroutines, again
    and again (measured, gc.callbacks with thread CPU time, 30,000 replays at 128 connections:
    9.7 us of collection per request at the default 700; 1.0 us at 10,000). Garbage cycles then
    wait a little longer (a megabyte or so). ``serve`` only, like the freeze.
    """
    freeze_start_up_objects()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVING_GC_THRESHOLD, older, oldest)


def _ignore_stop_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # not the main thread; no such signal
            signal.signal(signum, signal.SIG_IGN)


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)


def _loopback(address: ServerAddress) -> ServerAddress:
    """``address``, with a wildcard host (``0.0.0.0``, ``::``) replaced by one to connect to."""
    return ServerAddress(_WILDCARD_HOSTS.get(address.host, address.host), address.port)


def _print_banner(address: ServerAddress, config: MockConfig, out: TextIO) -> None:
    reachable = _loopback(address)
    if config.record_upstream:
        from mockserver.cassettes.scrub import mask_url

        print(
            f"{PROG}: serving on {address.url} (recording proxy, record mode {config.record_mode})",
            file=out,
        )
        print(
            f"{PROG}: recording from {mask_url(config.record_upstream)} into "
            f"{config.record_dir or DEFAULT_RECORD_DIR}",
            file=out,
        )
    else:
        print(f"{PROG}: serving on {address.url} (mode {config.mode})", file=out)
    if config.api_key is not None:  # the key itself is never printed
        print(f"{PROG}: keyed requests need the API key given (Authorization: Bearer)", file=out)
    print(f"export KOALA_API_ENDPOINT={reachable.api_endpoint}", file=out)
    print(
        f"{PROG}: live journal: {reachable.url}/__admin/ui ; admin API: {reachable.url}/__admin/ "
        f"(the journal as JSON: {reachable.url}/__admin/requests ) ; press Ctrl-C to stop",
        file=out,
    )
    out.flush()


def _report_cassettes(app: web.Application, config: MockConfig) -> None:
    """Load the cassettes now, so a bad file shows up at start-up rather than on first use."""
    from mockserver.server.state import cassettes

    if config.record_upstream:
        return  # the proxy answers from the upstream and its record directory
    if config.cassette_dir is None:
        CONSOLE.note("no cassettes (every answer is synthetic)")
        return
    if not config.cassette_dir.is_dir():
        _warn(f"no cassette directory at {config.cassette_dir}: answers will be synthetic")
        return
    library = cassettes(app)
    count = sum(len(c.interactions) for c in library.cassettes)
    CONSOLE.note(
        f"{plural(len(library.cassettes), 'cassette')} ({plural(count, 'interaction')}) "
        f"from {config.cassette_dir}"
    )
    for error in library.errors:  # a file name may hold a line break: escaped in text lines
        line = str(error) if CONSOLE.json else escape(str(error))
        CONSOLE.warn(f"cassette skipped: {line}", file=str(error.path), reason=error.problem)
    for shadowed, replayed in library.duplicates:
        _warn(f"cassette {shadowed} records the same request as {replayed}; {replayed} is replayed")


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: the port is already in use "
            "(choose another with --port, or --port 0 for any free port)"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


# -- demo -----------------------------------------------------------------------------------------


def _add_demo_command(subparsers: Any) -> None:
    demo = add_subcommand(subparsers, "demo")
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--prompt", default=None, help="the user message to send")
    source.add_argument(
        "--messages",
        type=Path,
        metavar="FILE.json",
        help='a JSON list of messages, e.g. [{"role": "user", "content": "Hi"}]',
    )
    demo.add_argument("--model", default="gpt-4o-mini", help="model name (default: %(default)s)")
    _add_response_options(demo)
    demo.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from mockserver.cli.demo import DEFAULT_PROMPT, DEMO_LATENCY, run_demo
    from mockserver.cli.messages_file import MessagesFileError, load_messages

    if args.messages is not None:
        try:
            messages = load_messages(args.messages)
        except MessagesFileError as exc:
            raise UsageError(str(exc)) from None
    else:
        messages = [{"role": "user", "content": args.prompt or DEFAULT_PROMPT}]
    if args.latency is None:
        args.latency = DEMO_LATENCY
    config = _config_from_args(args)
    try:
        return asyncio.run(run_demo(config, messages, args.model, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


# -- record / verify ----------------------------------------------------------------------------


def _add_record_command(subparsers: Any) -> None:
    from mockserver.cli.record import add_record_command

    add_record_command(subparsers)


def _add_verify_command(subparsers: Any) -> None:
    from mockserver.cli.verify import add_verify_command

    add_verify_command(subparsers)


# -- audit (mockserver.cli.audit_command) --------------------------------------------------------


def _add_audit_command(subparsers: Any) -> None:
    from mockserver.cli.audit_command import add_audit_command

    add_audit_command(subparsers)


# In the order the help lists them.
_COMMANDS.update(
    serve=_add_serve_command,
    demo=_add_demo_command,
    record=_add_record_command,
    verify=_add_verify_command,
    audit=_add_audit_command,
)


# -- helpers --------------------------------------------------------------------------------------


#: Where notes and warnings go; ``serve --log-format json`` makes it write JSON lines.
CONSOLE = Console()


def _warn(message: str) -> None:
    CONSOLE.warn(message)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
