"""The mock server's settings: one dataclass, validated when it is made."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CASSETTES_ENV_VAR = "KOALA_MOCK_CASSETTES"
#: The repository's bundled ``cassettes/`` directory.
DEFAULT_CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes"
MODES = ("auto", "replay", "synthetic", "fuzz")


def default_cassette_dir() -> Path:
    """``$KOALA_MOCK_CASSETTES`` when set (read when a config is made), else the bundled dir."""
    from_env = os.environ.get(CASSETTES_ENV_VAR)
    return Path(from_env) if from_env else DEFAULT_CASSETTE_DIR


@dataclass
class MockConfig:
    """How the mock server answers. Every field has a default that suits local development.

    - ``cassette_dir``: where vcrpy cassettes are loaded from (``KOALA_MOCK_CASSETTES`` overrides
      the bundled ``cassettes/``); ``None``: no cassettes.
    - ``mode``: ``auto`` (a matching cassette, else a synthetic answer), ``replay`` (cassettes
      only; no match is a 404 naming the nearest cassette), ``synthetic`` (never cassettes),
      ``fuzz`` (``auto`` plus meaning-preserving rewriting of the stream from a seed).
    - ``seed``: the fuzz seed (``None``: a new random seed per request, echoed in the reply).
    - ``strict``: header deviations are 422 errors instead of journal warnings.
    - ``latency``: seconds between events of streams that have no recorded timing.
    - ``speed``: time scale for recorded timing and ``latency`` (2.0 = twice as fast); 0 = no
      waiting at all.
    - ``default_fault``: ``"NAME;param=value;..."`` applied to every request without its own.
    - ``max_body_size``: larger request bodies get a 413.
    - ``record_upstream``, ``record_dir``, ``scrub``: recording proxy (see ``recording.py``).
    """

    cassette_dir: Path | None = field(default_factory=default_cassette_dir)
    mode: str = "auto"
    seed: int | None = None
    strict: bool = False
    latency: float = 0.0
    speed: float = 1.0
    default_fault: str | None = None
    max_body_size: int = 1_048_576
    record_upstream: str | None = None
    record_dir: Path | None = None
    scrub: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not self.latency >= 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency!r}")
        if not self.speed >= 0:
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {self.speed!r}")
        if self.max_body_size < 1:
            raise ValueError(f"max_body_size must be >= 1 byte, got {self.max_body_size!r}")
        if self.cassette_dir is not None and not isinstance(self.cassette_dir, Path):
            self.cassette_dir = Path(self.cassette_dir)
        if self.record_dir is not None and not isinstance(self.record_dir, Path):
            self.record_dir = Path(self.record_dir)
        if self.default_fault is not None:
            from .faults import parse_fault_spec  # late: faults imports nothing from here

            parse_fault_spec(self.default_fault)  # raises FaultSpecError (a ValueError)

    def scaled(self, seconds: float) -> float:
        """A recorded or configured delay, scaled by ``speed`` (0 when speed is 0)."""
        if self.speed == 0 or seconds <= 0:
            return 0.0
        return seconds / self.speed
