"""A SIGTERM or SIGINT that reaches ``koala-mock serve`` while it is still starting (importing
aiohttp takes about 0.3 s) stops it with exit 0, not -15 or a KeyboardInterrupt traceback: the
command's entry point (:mod:`koala_mock_launcher`) catches both before importing ``mockserver``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Sends the signal from inside the import of aiohttp: the moment the old entry point died at.
_DURING_IMPORT = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys
    from importlib.metadata import entry_points

    signum = getattr(signal, sys.argv[1])

    class SignalDuringImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "aiohttp":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signum)
            return None

    sys.meta_path.insert(0, SignalDuringImport())
    (command,) = entry_points(group="console_scripts", name="koala-mock")
    sys.argv = ["koala-mock", "serve", "--port", "0"]
    sys.exit(command.load()())
    """
)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_imports_exits_0(signame: str) -> None:
    (command,) = entry_points(group="console_scripts", name="koala-mock")
    assert command.value == "koala_mock_launcher:main", "stale install: rerun pip install -e ."
    done = subprocess.run(
        [sys.executable, "-c", _DURING_IMPORT, signame],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "serving on" not in done.stdout


def _catches_sigterm(pid: int) -> bool:
    """Whether ``pid`` has a handler for SIGTERM (Linux: the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_sigterm_as_soon_as_serve_catches_it_exits_0() -> None:
    command = Path(sys.executable).with_name("koala-mock")
    if not command.exists():
        pytest.skip("the koala-mock script is not installed next to this Python")
    process = subprocess.Popen(
        [str(command), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _catches_sigterm(process.pid) and process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)  # the poll above returned: it has not exited yet
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err
    assert "Traceback" not in err
