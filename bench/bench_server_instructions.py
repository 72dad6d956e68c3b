"""Instructions per request of the mock server and the one-write baseline. Prints figures.

    python bench/bench_server_instructions.py [--requests N]

``bench_server.py``'s CPU time per stream moves with whatever else the machine runs (the same
code measured 64-93% of the baseline within ten minutes on a shared 2-core machine). This
counts machine instructions instead, which other load does not change: each server (the same
ones as ``bench_server.py``: the mock as ``koala-mock serve`` runs by default, journal and text
access log on, start-up objects frozen; and the mock with ``--quiet``, no access log) runs under
valgrind's callgrind twice, answering ``--requests`` and 5x ``--requests`` replays over 16
keep-alive connections; the difference divided by the extra requests is the cost of one
request, start-up and shutdown cancelled out. Needs ``valgrind`` on PATH; about 4 minutes
(valgrind runs Python about 50x slower). Instructions are not time (cache misses, memory kept
cold by 10,000 journal entries, system calls' time do not show), but every Python frame does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    CALLGRIND,
    callgrind_environment,
    collected_instructions,
    have_valgrind,
    wait_for_port_file,
)
from bench_server import baseline_app, mock_app, raw_load, write_bench_cassette

KINDS = ("baseline", "mock", "mock --quiet")
CONNECTIONS = 16


def serve(kind: str, cassette_dir: Path, port_file: Path, done_file: Path) -> None:
    """One server in this process until ``done_file`` appears (polled every 50 ms)."""
    options: dict[str, object]
    if kind == "baseline":
        app = baseline_app((cassette_dir / "body.bin").read_bytes())
        options = {"access_log": None}
    else:
        from mockserver.server.access_log import install_access_log

        sys.stderr = open(cassette_dir / f"access-{os.getpid()}.log", "w")  # noqa: SIM115
        app = mock_app(cassette_dir)
        quiet = kind.endswith("--quiet")
        options = (
            {"access_log": None} if quiet else {"access_log_class": install_access_log(app, "text")}
        )

    async def run() -> None:
        runner = web.AppRunner(app, handle_signals=False, **options)  # type: ignore[arg-type]
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        if kind != "baseline":
            from mockserver.cli.main import tune_garbage_collector
            from mockserver.server.state import cassettes

            cassettes(app)
            tune_garbage_collector()  # as `koala-mock serve` does once it has started
        port_file.write_text(str(runner.addresses[0][1]))
        while not done_file.exists():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    asyncio.run(run())


def count(kind: str, requests: int, cassette_dir: Path, body_len: int) -> int:
    """Instructions of one server process that answered ``requests`` requests."""
    work = Path(tempfile.mkdtemp(dir=cassette_dir))
    port_file, done_file = work / "port", work / "done"
    command = [
        *CALLGRIND,
        __file__,
        "--serve",
        kind,
        str(cassette_dir),
        str(port_file),
        str(done_file),
    ]
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=callgrind_environment()
    ) as server:
        try:
            url = f"http://127.0.0.1:{wait_for_port_file(server, port_file, kind)}/api/gpt/"
            # raw_load sends one warm-up request per connection on top of the budget.
            result = asyncio.run(
                raw_load(url, body_len, CONNECTIONS, requests - CONNECTIONS, 3600.0)
            )
            if result.errors or result.streams != requests - CONNECTIONS:
                raise SystemExit(f"{kind}: {result.streams} streams, {result.errors} errors")
        finally:
            done_file.touch()
        _, stderr = server.communicate(timeout=600)
    return collected_instructions(stderr, kind)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        kind, cassette_dir, port_file, done_file = sys.argv[2:6]
        serve(kind, Path(cassette_dir), Path(port_file), Path(done_file))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=250, help="the smaller run (default 250)")
    args = parser.parse_args()
    if not have_valgrind():
        return 1
    small = max(args.requests, 2 * CONNECTIONS)
    large = 5 * small
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
            print(f"{kind:<14} {per_request[kind]:>10,.0f}")
    base = per_request["baseline"]
    for kind in KINDS[1:]:
        print(f"baseline / {kind}: {base / per_request[kind]:.0%} (issue 11's target: >= 90%)")
    print(f"the access log: {per_request['mock'] - per_request['mock --quiet']:,.0f} per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
