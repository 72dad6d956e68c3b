"""Instructions (or system calls) per request of the mock server and the baselines. Prints figures.

    python bench/bench_server_instructions.py [--requests N]      # needs valgrind
    python bench/bench_server_instructions.py --syscalls          # needs strace

``bench_server.py``'s CPU time per stream moves with whatever else the machine runs (the same
code measured 64-93% of the baseline within ten minutes on a shared 2-core machine). This
counts machine instructions instead, which other load does not change: each server runs under
valgrind's callgrind twice, answering ``--requests`` and 5x ``--requests`` replays over 16
keep-alive connections; the difference divided by the extra requests is the cost of one
request, start-up and shutdown cancelled out. The servers: ``bench_server.py``'s one-write
baseline (``prepare``, ``write``, ``write_eof``: three sends per request); the same answer as
one ``web.Response`` (one send, as the mock sends a replay); the mock as ``koala-mock serve``
runs by default (journal and text access log on, collector tuned); the mock with ``--quiet``
(no access log). About 6 minutes (valgrind runs Python about 50x slower).

Instructions are user-space only: the kernel's work for each send (on loopback, most of a
request's CPU time) and cache misses do not show, but every Python frame does. ``--syscalls``
counts, by ``strace -f -c`` the same way, the system calls per request that the instruction
count leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    CALLGRIND,
    CountedServer,
    collected_instructions,
    have_valgrind,
    serve_until_stdin_closes,
    settle_as_serve,
)
from bench_server import baseline_app, mock_app, raw_load, write_bench_cassette

KINDS = ("baseline", "baseline, one send", "mock", "mock --quiet")
CONNECTIONS = 16
#: The system calls counted per request with ``--syscalls`` (the rest are start-up).
SYSCALLS = ("sendto", "recvfrom", "epoll_wait", "write")


def one_send_app(body: bytes) -> web.Application:
    """The baseline's answer as one ``web.Response`` (head and body in one send, as the mock
    sends a replay), where the baseline's prepare, write and write_eof make three."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, headers={"Content-Type": "text/event-stream; charset=utf-8"})

    app = web.Application()
    app.router.add_post("/api/gpt/", handle)
    return app


def serve(kind: str, cassette_dir: Path, port_file: Path) -> None:
    """One server in this process until its stdin is closed."""
    if kind.startswith("baseline"):
        body = (cassette_dir / "body.bin").read_bytes()
        app = baseline_app(body) if kind == "baseline" else one_send_app(body)
        serve_until_stdin_closes(app, port_file, access_log=None)
        return
    from mockserver.server.access_log import install_access_log

    sys.stderr = open(cassette_dir / f"access-{os.getpid()}.log", "w")  # noqa: SIM115
    app = mock_app(cassette_dir)
    if kind.endswith("--quiet"):
        serve_until_stdin_closes(app, port_file, lambda: settle_as_serve(app), access_log=None)
    else:
        log_class = install_access_log(app, "text")
        serve_until_stdin_closes(
            app, port_file, lambda: settle_as_serve(app), access_log_class=log_class
        )


def run_server(
    kind: str, requests: int, cassette_dir: Path, body_len: int, wrapper: list[str]
) -> str:
    """Start one server under ``wrapper`` (valgrind, strace), have it answer ``requests``
    requests, stop it; what the wrapper printed on stderr."""
    port_file = Path(tempfile.mkdtemp(dir=cassette_dir)) / "port"
    command = [*wrapper, __file__, "--serve", kind, str(cassette_dir), str(port_file)]
    server = CountedServer(command, port_file, kind)
    with server as port:
        url = f"http://127.0.0.1:{port}/api/gpt/"
        # raw_load sends one warm-up request per connection on top of the budget.
        result = asyncio.run(raw_load(url, body_len, CONNECTIONS, requests - CONNECTIONS, 3600.0))
        if result.errors or result.streams != requests - CONNECTIONS:
            raise SystemExit(f"{kind}: {result.streams} streams, {result.errors} errors")
    return server.stderr


def count(kind: str, requests: int, cassette_dir: Path, body_len: int) -> int:
    """Instructions of one server process that answered ``requests`` requests."""
    stderr = run_server(kind, requests, cassette_dir, body_len, CALLGRIND)
    return collected_instructions(stderr, kind)


def syscalls(kind: str, requests: int, cassette_dir: Path, body_len: int) -> dict[str, int]:
    """System calls (by ``strace -f -c``) of one server process that answered ``requests``."""
    summary = cassette_dir / f"strace-{os.getpid()}.txt"
    wrapper = ["strace", "-f", "-c", "-o", str(summary), sys.executable]
    run_server(kind, requests, cassette_dir, body_len, wrapper)
    calls: dict[str, int] = {}
    for line in summary.read_text().splitlines():
        fields = line.split()  # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and fields[-1] in SYSCALLS and fields[3].isdigit():
            calls[fields[-1]] = int(fields[3])
    return calls


def print_syscalls(cassette_dir: Path, body_len: int, small: int, large: int) -> None:
    print(f"system calls per request (strace -f -c; {large} minus {small} replays)")
    print(f"{'server':<20}" + "".join(f"{name:>12}" for name in SYSCALLS))
    for kind in KINDS:
        runs = [syscalls(kind, n, cassette_dir, body_len) for n in (small, large)]
        per_request = [
            (runs[1].get(name, 0) - runs[0].get(name, 0)) / (large - small) for name in SYSCALLS
        ]
        print(f"{kind:<20}" + "".join(f"{value:>12.2f}" for value in per_request))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        kind, cassette_dir, port_file = sys.argv[2:5]
        serve(kind, Path(cassette_dir), Path(port_file))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=250, help="the smaller run (default 250)")
    parser.add_argument(
        "--syscalls", action="store_true", help="count system calls (strace) instead"
    )
    args = parser.parse_args()
    small = max(args.requests, 2 * CONNECTIONS)
    large = 5 * small
    if args.syscalls:
        if shutil.which("strace") is None:
            print("strace is not installed: nothing to count with", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory(prefix="koala-bench-") as temp:
            body = write_bench_cassette(Path(temp))
            (Path(temp) / "body.bin").write_bytes(body)
            print_syscalls(Path(temp), len(body), small, large)
        return 0
    if not have_valgrind():
        return 1
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="koala-bench-") as temp:
        cassette_dir = Path(temp)
        body = write_bench_cassette(cassette_dir)
        (cassette_dir / "body.bin").write_bytes(body)
        print(
            f"instructions per request (callgrind; {large} minus {small} replays of a "
            f"{len(body)}-byte, 64-event stream over {CONNECTIONS} connections)"
        )
        for kind in KINDS:
            counts = [count(kind, n, cassette_dir, len(body)) for n in (small, large)]
            per_request[kind] = (counts[1] - counts[0]) / (large - small)
            print(f"{kind:<20} {per_request[kind]:>10,.0f}")
    for base in KINDS[:2]:
        for kind in KINDS[2:]:
            ratio = per_request[base] / per_request[kind]
            print(f"{base} / {kind}: {ratio:.0%} (issue 11's target: >= 90%)")
    print(f"the access log: {per_request['mock'] - per_request['mock --quiet']:,.0f} per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
