"""Start-up: ``koala-mock serve`` to its first 200, next to a bare aiohttp app. Prints figures.

    python bench/bench_startup.py [--rounds R]

Both are started the same way, as a new Python process: ``python -m mockserver serve --port 0``
with its default flags (bundled cassettes, journal and access log on), and ``python
bench/startup_bare_app.py``, an aiohttp app with one POST handler that imports nothing else,
started with ``web.AppRunner`` and printing its port. The clock runs from starting the process
to the answer of the first request (the provider's real request, ``POST /api/gpt/``) with
status 200, the request sent as soon as the process prints its address (``serve`` prints it
only once its cassettes are loaded). Rounds alternate (bare, mock, mock, bare, ...); it prints
the median and the spread of each, and the ratio.

Bytecode as an installed package has it (pip compiles every module at install): both run with a
fresh ``PYTHONPYCACHEPREFIX``, filled by one untimed start of each, and without
``PYTHONDONTWRITEBYTECODE`` (set in some environments, this one included: with an editable
install it makes every start compile every project module from source, about 0.1 s here, and
would measure the compiler). Besides the wall clock, the server process's CPU time until its
first answer (Linux). Loopback only; about 10 s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = ("bare aiohttp", "koala-mock serve")
PORT_LINE = re.compile(r"(?:serving on http://127\.0\.0\.1:|^PORT )(\d+)")


BARE_APP = Path(__file__).resolve().parent / "startup_bare_app.py"


def command(kind: str) -> list[str]:
    if kind == "bare aiohttp":
        return [sys.executable, str(BARE_APP)]
    return [sys.executable, "-m", "mockserver", "serve", "--port", "0"]


def environment(cache_dir: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    # The cassettes' parse cache, like the bytecode cache, filled by the untimed start.
    env["KOALA_MOCK_CACHE_DIR"] = os.path.join(cache_dir, "parsed-cassettes")
    return env


def cpu_seconds(pid: int) -> float:
    """CPU time the process has run so far, all threads (Linux schedstat, ns); NaN elsewhere.

    Less moved by other load on the machine than the wall clock: waiting for a CPU is not in it.
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total / 1e9


def start(kind: str, env: dict[str, str], wrapper: Sequence[str] = ()) -> subprocess.Popen[str]:
    """The server process (run under ``wrapper``, e.g. valgrind, when given)."""
    return subprocess.Popen(
        [*wrapper, *command(kind)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def ask_first(kind: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Send the provider's request as soon as ``process`` prints its address, and read the
    whole answer; SystemExit unless it is a 200."""
    from koala.request import build_headers, build_payload, encode_payload

    body = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
    headers = {**build_headers(), "Content-Type": "application/json"}
    assert process.stdout is not None
    port = None
    for line in process.stdout:
        found = PORT_LINE.search(line)
        if found:
            port = int(found.group(1))
            break
    if port is None:
        raise SystemExit(f"{kind}: printed no address")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/api/gpt/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"{kind}: first answer was {response.status}")


def first_200(kind: str, env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = start(kind, env)
    try:
        ask_first(kind, process)
        elapsed = time.perf_counter() - started
        return elapsed, cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(10)


Timings = dict[str, list[tuple[float, float]]]


def measure(rounds: int) -> Timings:
    with tempfile.TemporaryDirectory(prefix="koala-bench-pyc-") as cache_dir:
        env = environment(cache_dir)
        for kind in KINDS:  # untimed: fills the bytecode cache
            first_200(kind, env)
        times: Timings = {kind: [] for kind in KINDS}
        for number in range(max(1, rounds)):
            for kind in KINDS if number % 2 == 0 else KINDS[::-1]:
                times[kind].append(first_200(kind, env))
    return times


def report(rounds: int, times: Timings) -> None:
    print(
        f"process start to first 200, bytecode cached, {rounds} alternating rounds; "
        f"{os.cpu_count()} CPUs; wall clock, and the server process's CPU time until then"
    )
    print(f"{'server':<18} {'median':>9} {'min':>9} {'max':>9} | {'CPU p50':>9} {'CPU min':>9}")
    medians = {}
    for kind, pairs in times.items():
        wall = [w for w, _ in pairs]
        cpu = [c for _, c in pairs]
        medians[kind] = (statistics.median(wall), statistics.median(cpu))
        print(
            f"{kind:<18} {medians[kind][0] * 1e3:>6.0f} ms {min(wall) * 1e3:>6.0f} ms "
            f"{max(wall) * 1e3:>6.0f} ms | {medians[kind][1] * 1e3:>6.0f} ms "
            f"{min(cpu) * 1e3:>6.0f} ms"
        )
    (bare_wall, bare_cpu), (mock_wall, mock_cpu) = (medians[kind] for kind in KINDS)
    print(
        f"koala-mock serve / bare aiohttp: {mock_wall / bare_wall:.2f}x wall clock, "
        f"{mock_cpu / bare_cpu:.2f}x CPU (target <= 1.00x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=8, help="per server (default 8)")
    args = parser.parse_args()
    report(args.rounds, measure(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
