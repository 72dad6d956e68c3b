"""What the audit runs: every fault with the parameter variants that matter, and fuzz seeds.

Waits are set from the audit's hang limit ``T`` (``--timeout``) and the read timeout ``R`` the
project's provider is given (``--read-timeout``, default ``T/2``): a *short* wait (``R/3``) must
be waited out, a *long* one (``T+1``) must end in a timeout error before ``T``. A client with no
timeout of its own hangs on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mockserver.wire.expectations import VALUES, Expected, Limits
from mockserver.wire.faults import FAULTS, MAX_WAIT_SECONDS, FaultSpec, make_fault_spec

__all__ = ["FUZZ", "MAX_TIMEOUT", "FaultCase", "FuzzCase", "Timing", "fault_cases"]

FUZZ = "fuzz"
#: The longest hang limit: a long stall must still fit in the faults' own bound.
MAX_TIMEOUT = MAX_WAIT_SECONDS - 1
#: What the faults default to, and the variants that matter besides (in the catalogue's order).
_VARIANTS: dict[str, tuple[Mapping[str, Any], ...]] = {
    "server_error": ({"status": 500}, {"status": 503}),
    "truncate": (
        {"events": 0},
        {"events": 2},
        {"events": 2, "mid_event": True},
    ),
    "disconnect": ({"events": 0}, {"events": 2}),
    "stall": ({"after": 1, "seconds": "short"}, {"after": 1, "seconds": "long"}),
    "slow_first_byte": ({"delay": "short"}, {"delay": "long"}),
    "malformed_json": ({"after": 0}, {"after": 1}),
    "huge_event": ({"size": 600_000}, {"size": "above_limit"}),
    "split_writes": ({"size": 1}, {"size": 7}),
}


@dataclass(frozen=True)
class Timing:
    """The audit's clock and limits: the hang limit, the provider's read timeout and largest
    event, and the waits derived from them."""

    hang_after: float
    read_timeout: float
    max_event_size: int

    def __post_init__(self) -> None:
        if not 0 < self.read_timeout < self.hang_after:
            raise ValueError(
                f"the read timeout ({self.read_timeout:g} s) must be shorter than the hang "
                f"limit ({self.hang_after:g} s), or a timeout looks like a hang"
            )

    @property
    def short_wait(self) -> float:
        return round(self.read_timeout / 3, 3)

    @property
    def long_wait(self) -> float:
        return min(MAX_WAIT_SECONDS, round(self.hang_after + 1, 3))

    @property
    def limits(self) -> Limits:
        return Limits(read_timeout=self.read_timeout, max_event_size=self.max_event_size)

    def resolve(self, value: Any) -> Any:
        return (
            {
                "short": self.short_wait,
                "long": self.long_wait,
                "above_limit": self.max_event_size + 1,
            }.get(value, value)
            if isinstance(value, str)
            else value
        )


@dataclass(frozen=True)
class FaultCase:
    """One fault with its parameters, and what a good client does with it."""

    spec: FaultSpec
    expected: Expected

    @property
    def family(self) -> str:
        return self.spec.scenario.family

    @property
    def label(self) -> str:
        return str(self.spec)


@dataclass(frozen=True)
class FuzzCase:
    """One cassette's answer, rewritten by one seed; the right answer is the recorded values."""

    seed: int
    cassette: str
    messages: Sequence[Mapping[str, Any]]
    values: Sequence[Any]
    expected: Expected = VALUES
    family: str = FUZZ

    @property
    def label(self) -> str:
        return f"{self.cassette} seed={self.seed}"


def fault_cases(timing: Timing) -> Iterator[FaultCase]:
    """Every fault of the catalogue, once per variant that matters."""
    for name in FAULTS:
        for params in _VARIANTS.get(name, ({},)):
            resolved = {key: timing.resolve(value) for key, value in params.items()}
            spec = make_fault_spec(name, resolved)
            yield FaultCase(spec, spec.expected(timing.limits))
