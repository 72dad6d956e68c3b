"""Fire generated bad requests at ``koala-mock serve`` on 127.0.0.1 and count what came back.

    python bench/bad_requests.py                    # 10,000 requests, 16 at a time
    python bench/bad_requests.py --requests 20000 --seed 7

Starts ``python -m mockserver serve --port 0 --mode synthetic --speed 0`` in a subprocess,
sends the requests of ``tests/bad_requests.py`` (garbage bytes, bodies that do not decode and
decompression bombs, contract violations, refused fault and seed headers, numbers in other
digits or with underscores, control headers given twice, bad admin parameters and bodies,
stubs with unsendable or server-set headers, foreign Host/Origin, wrong methods and odd paths,
bodies cut short, malformed framing), then stops the server with SIGTERM and prints: answers
by status, 5xx, app 4xx that are not JSON, stubs accepted, aiohttp's own plain-text parser
400s, requests with no answer, tracebacks and lines in the server's log, and its exit code.
Bounded: at most ``--requests`` requests and ``--max-seconds`` seconds. Exit status 1 if any
5xx, non-JSON app 4xx, accepted stub or traceback was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bad_requests import Tally, bad_request, send_raw  # noqa: E402

SERVE = [sys.executable, "-m", "mockserver", "serve", "--port", "0", "--mode", "synthetic"]
SERVE += ["--speed", "0"]


def start_server(log: IO[str]) -> tuple[subprocess.Popen[str], int]:
    """The server, its log going to ``log`` (a file: a pipe nobody reads would fill up)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [*SERVE, "--cassettes", str(ROOT / "cassettes")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export KOALA_API_ENDPOINT="):
            port = int(line.strip().rsplit(":", 1)[1].split("/")[0])
            return process, port
    process.wait()
    log.seek(0)
    raise SystemExit(f"the server did not start: {log.read()}")


async def fire(port: int, count: int, seed: int, concurrency: int, deadline: float) -> Tally:
    rng = random.Random(seed)
    host = f"127.0.0.1:{port}"
    tally = Tally()
    requests = iter([bad_request(rng, host) for _ in range(count)])

    async def worker() -> None:
        for request in requests:
            if time.monotonic() > deadline:
                return
            tally.add(request, await send_raw("127.0.0.1", port, request))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()

    log_file = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed at exit)
    process, port = start_server(log_file)
    started = time.monotonic()
    try:
        tally = asyncio.run(
            fire(port, args.requests, args.seed, args.concurrency, started + args.max_seconds)
        )
        elapsed = time.monotonic() - started
        alive = asyncio.run(
            send_raw(
                "127.0.0.1",
                port,
                b"GET /__admin/health HTTP/1.0\r\n" + f"Host: 127.0.0.1:{port}\r\n\r\n".encode(),
            )
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        log_file.seek(0)
        log = log_file.read()
    lines = log.splitlines()
    tracebacks = sum("Traceback" in line for line in lines)
    print(f"bad requests sent: {tally.sent} in {elapsed:.1f} s (seed {args.seed})")
    print(
        "answers by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.by_status.items()))
    )
    print(f"5xx: {tally.server_errors}")
    print(f"app 4xx not JSON: {tally.non_json_4xx}")
    print(f"bad stubs accepted: {tally.accepted_stubs}")
    print(f"aiohttp parser 400 (plain text, before any handler): {tally.parser_400s}")
    print(f"no answer (the client hung up mid-body, or the server closed): {tally.no_answer}")
    print(f"server log: {len(lines)} lines, {tracebacks} tracebacks")
    serving = alive.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    print(f"still serving afterwards: {serving}")
    print(f"server exit code after SIGTERM: {process.returncode}")
    for example in tally.examples:
        print(f"  example: {example!r}")
    bad = tally.server_errors or tally.non_json_4xx or tally.accepted_stubs or tracebacks
    bad = bad or process.returncode
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
