"""Peak memory of ``koala-mock serve`` while clients ask for huge faults at once. Prints figures.

    python bench/bench_fault_memory.py [--clients 8] [--size 67108864] [--baseline-repo DIR]

Starts ``python -m mockserver serve --port 0 --mode synthetic --speed 0`` as a new process,
sends ``--clients`` concurrent requests (the provider's real request) with
``X-Koala-Mock-Fault: huge_event;size=SIZE``, reads every answer to its end (discarding the
bytes), and prints the server's peak resident set (``VmHWM`` from ``/proc/PID/status``) once
started and after the load, the answers' statuses and the bytes received. Runs, side by side
in one run:

- ``defaults``: this repository's server with its default flags (the bound on bytes generated
  at once lets one 64 MiB answer through at a time; the others get a 503);
- ``bound raised``: the same with ``--max-generated-bytes`` raised so every client is served
  at once (lazy generation alone keeps the memory down);
- ``baseline``: with ``--baseline-repo DIR``, the server of another checkout (the code before
  a change) under the same load.

Loopback only; each run bounded by ``--timeout`` seconds (the requests are cancelled past it).
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from serve_process import ServeProcess  # noqa: E402

from koala.request import build_headers, build_payload, encode_payload  # noqa: E402

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
HEADERS = {**build_headers(), "Content-Type": "application/json"}
READ_SIZE = 1 << 20
SERVE_FLAGS = ("--port", "0", "--mode", "synthetic", "--speed", "0")


@dataclass
class Figures:
    label: str
    started_kib: int
    peak_kib: int
    statuses: Counter[int]
    received: int
    seconds: float


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


async def _ask(endpoint: str, fault: str, timeout: float) -> tuple[int, int]:
    from aiohttp import ClientSession, ClientTimeout

    async with (
        ClientSession(timeout=ClientTimeout(total=timeout)) as session,
        session.post(
            endpoint, data=BODY, headers={**HEADERS, "X-Koala-Mock-Fault": fault}
        ) as response,
    ):
        received = 0
        while chunk := await response.content.read(READ_SIZE):
            received += len(chunk)
        return response.status, received


async def _load(endpoint: str, fault: str, clients: int, timeout: float) -> list[tuple[int, int]]:
    tasks = [_ask(endpoint, fault, timeout) for _ in range(clients)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r if isinstance(r, tuple) else (-1, 0) for r in results]


def run(label: str, repo: Path, flags: list[str], args: argparse.Namespace) -> Figures:
    server = ServeProcess(*SERVE_FLAGS, *flags, repo=repo)
    try:
        endpoint = server.wait_for_endpoint()
        pid = server.process.pid
        started_rss = _status_kib(pid, "VmHWM")
        fault = f"huge_event;size={args.size}"
        started = time.perf_counter()
        results = asyncio.run(_load(endpoint, fault, args.clients, args.timeout))
        seconds = time.perf_counter() - started
        peak = _status_kib(pid, "VmHWM")
    finally:
        server.close()
    statuses = Counter(status for status, _ in results)
    return Figures(label, started_rss, peak, statuses, sum(n for _, n in results), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run at most")
    parser.add_argument(
        "--baseline-repo", type=Path, help="another checkout to run the same load against"
    )
    args = parser.parse_args()
    runs = []
    if args.baseline_repo is not None:
        runs.append(run("baseline", args.baseline_repo.resolve(), [], args))
    runs.append(run("defaults", REPO, [], args))
    raised = str(args.clients * args.size + (1 << 20))
    runs.append(run("bound raised", REPO, ["--max-generated-bytes", raised], args))
    print(
        f"{args.clients} concurrent clients, X-Koala-Mock-Fault: huge_event;size={args.size}, "
        "koala-mock serve --mode synthetic --speed 0"
    )
    print(
        f"{'server':<14}| {'started':>9} | {'peak RSS':>9} | {'answers':<22}| "
        f"{'received':>10} | {'seconds':>7}"
    )
    for f in runs:
        answers = ", ".join(
            f"{n}x {'failed' if s < 0 else s}" for s, n in sorted(f.statuses.items())
        )
        print(
            f"{f.label:<14}| {f.started_kib / 1024:>6.1f} MB | {f.peak_kib / 1024:>6.1f} MB | "
            f"{answers:<22}| {f.received / 2**20:>6.1f} MiB | {f.seconds:>7.2f}"
        )


if __name__ == "__main__":
    main()
