"""``python -m mockserver serve`` as a child process, for the tests that run the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from koala import Koala

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0


class ServeProcess:
    """``python -m mockserver serve ...`` with its printed endpoint parsed; ``repo``: the
    checkout whose code runs (another one for a benchmark's baseline)."""

    def __init__(self, *flags: str, env: dict[str, str] | None = None, repo: Path = REPO) -> None:
        env = dict(os.environ, **(env or {}), PYTHONPATH=str(repo), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mockserver", "serve", *flags],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._watchdog = threading.Timer(STARTUP_TIMEOUT + 60, self.process.kill)
        self._watchdog.start()
        self.banner: list[str] = []
        self.api_endpoint = ""

    def wait_for_endpoint(self) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line)
            if line.startswith("export KOALA_API_ENDPOINT="):
                self.api_endpoint = line.strip().split("=", 1)[1]
                return self.api_endpoint
        raise AssertionError(f"serve printed no endpoint; stderr: {self.stop_output()[1]}")

    @property
    def base_url(self) -> str:
        return self.api_endpoint.removesuffix("/api/gpt/")

    def ask(self, prompt: str) -> str:
        """The provider's whole answer to one user message (after :meth:`wait_for_endpoint`)."""
        messages = [{"role": "user", "content": prompt}]
        chunks = Koala.create_completion("gpt-4o-mini", messages, api_endpoint=self.api_endpoint)
        return "".join(chunks)

    def terminate(self) -> tuple[str, str]:
        """SIGTERM, then everything printed (stdout with the banner, stderr)."""
        self.process.send_signal(signal.SIGTERM)
        return self.stop_output()

    def stop_output(self) -> tuple[str, str]:
        try:
            out, err = self.process.communicate(timeout=EXIT_TIMEOUT)
        finally:
            self._watchdog.cancel()
        return "".join(self.banner) + out, err

    def close(self) -> None:
        self._watchdog.cancel()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
