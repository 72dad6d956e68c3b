"""Start-up in machine instructions: ``koala-mock serve`` to its first 200, next to a bare aiohttp
app. Prints figures.

    python bench/bench_startup_instructions.py [--rounds R]

``bench_startup.py``'s wall clock and CPU time move with whatever else the machine runs (the
same code measured 1.19-1.53x the bare app within an hour on a shared 2-core machine). This
counts instructions instead, which other load does not change: each process is started exactly
as ``bench_startup.py`` starts it (the same command, environment and warm bytecode cache), but
under valgrind's callgrind, and sent the provider's request as soon as it prints its address.
Once the answer (200) is read, the process gets ``SIGUSR1``, whose default action (neither
server sets a handler) ends it on the spot: no shutdown or interpreter finalization is counted,
only process start to the first answer, plus the idle wait between them (no instructions).
``PYTHONHASHSEED`` is fixed, so a second round repeats the count to within a few thousand
instructions. Needs ``valgrind`` on PATH; about 30 s a round (valgrind runs Python about 50x
slower). Instructions are not time (cache misses and system calls do not show), but every
Python frame and every import does.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import collected_instructions, have_valgrind
from bench_startup import KINDS, ask_first, environment, first_200, start


def instructions(kind: str, env: dict[str, str], work: Path) -> int:
    """Instructions of one process, from its start to its first answer (a 200)."""
    log = work / f"callgrind-{kind.replace(' ', '_')}.log"
    valgrind = (
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        f"--log-file={log}",
    )
    process = start(kind, env, valgrind)
    try:
        ask_first(kind, process, timeout=300)
        process.send_signal(signal.SIGUSR1)  # default action: the process ends here
        process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return collected_instructions(log.read_text(), kind)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=1, help="per server (default 1)")
    args = parser.parse_args()
    if not have_valgrind():
        return 1
    rounds = max(1, args.rounds)
    with tempfile.TemporaryDirectory(prefix="koala-bench-pyc-") as cache_dir:
        env = dict(environment(cache_dir), PYTHONHASHSEED="0")
        for kind in KINDS:  # untimed and uncounted: fills the bytecode cache
            first_200(kind, env)
        counts: dict[str, list[int]] = {kind: [] for kind in KINDS}
        for _ in range(rounds):
            for kind in KINDS:
                counts[kind].append(instructions(kind, env, Path(cache_dir)))
    print(
        f"instructions from process start to the first 200 (callgrind), bytecode cached, "
        f"{rounds} round(s)"
    )
    for kind, values in counts.items():
        shown = ", ".join(f"{value / 1e6:,.1f} M" for value in values)
        print(f"{kind:<18} {shown}")
    bare, mock = (min(counts[kind]) for kind in KINDS)
    print(
        f"koala-mock serve / bare aiohttp: {mock / bare:.3f}x instructions "
        f"(+{(mock - bare) / 1e6:,.1f} M; target <= 1.00x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
