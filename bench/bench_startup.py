"""Start-up: ``koala-mock serve`` to its first 200, next to a bare aiohttp app. Prints figures.

    python bench/bench_startup.py [--rounds R]

Both are started the same way, as a new Python process (``python -m mockserver serve --port 0``
with its default flags: bundled cassettes, journal and access log on; and ``python
bench/bench_startup.py --bare``, an aiohttp app with one POST handler, started with
``web.AppRunner`` and printing its port the same way). The clock runs from starting the process
to the answer of the first request (the provider's real request, ``POST /api/gpt/``) with
status 200, the request sent as soon as the process prints its address. Rounds alternate
(bare, mock, mock, bare, ...); it prints the median and the spread of each, and the ratio.
Loopback only; about 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = ("bare aiohttp", "koala-mock serve")
PORT_LINE = re.compile(r"(?:serving on http://127\.0\.0\.1:|^PORT )(\d+)")


def bare_server() -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'data: "ok"\n\n', content_type="text/event-stream")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/gpt/", answer)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def command(kind: str) -> list[str]:
    if kind == "bare aiohttp":
        return [sys.executable, __file__, "--bare"]
    return [sys.executable, "-m", "mockserver", "serve", "--port", "0"]


def first_200(kind: str) -> float:
    from koala.request import build_headers, build_payload, encode_payload

    body = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
    headers = {**build_headers(), "Content-Type": "application/json"}
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    process = subprocess.Popen(
        command(kind),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            found = PORT_LINE.search(line)
            if found:
                port = int(found.group(1))
                break
        if port is None:
            raise SystemExit(f"{kind}: printed no address")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/api/gpt/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        connection.close()
        if response.status != 200:
            raise SystemExit(f"{kind}: first answer was {response.status}")
        return elapsed
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=8, help="per server (default 8)")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_server()
        return 0
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for number in range(max(1, args.rounds)):
        for kind in KINDS if number % 2 == 0 else KINDS[::-1]:
            times[kind].append(first_200(kind))
    print(f"process start to first 200, {args.rounds} alternating rounds; {os.cpu_count()} CPUs")
    print(f"{'server':<18} {'median':>9} {'min':>9} {'max':>9}")
    for kind, values in times.items():
        print(
            f"{kind:<18} {statistics.median(values) * 1e3:>6.0f} ms {min(values) * 1e3:>6.0f} ms "
            f"{max(values) * 1e3:>6.0f} ms"
        )
    bare, mock = (statistics.median(times[kind]) for kind in KINDS)
    print(f"koala-mock serve / bare aiohttp: {mock / bare:.2f}x (target <= 1.00x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
