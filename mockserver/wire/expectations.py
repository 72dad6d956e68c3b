"""What a good client does with a fault: the vocabulary of the registry's ``expected`` field.

Each fault in :data:`mockserver.wire.faults.FAULTS` states its family (for the audit's
scorecard) and a rule giving its right outcome: read the whole answer, raise the documented
error (a class of :mod:`koala.errors`, by name), or either. Some outcomes depend on the fault's
parameters and the client's own limits (a stall shorter than the client's read timeout is waited
out; a longer one must end in a timeout error), so a rule maps ``(params, limits)`` to an
:class:`Expected`. ``koala-mock audit`` scores clients against them. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONNECTION",
    "CONTENT",
    "FAMILIES",
    "FRAMING",
    "STATUS",
    "TIMING",
    "VALUES",
    "Expected",
    "Limits",
    "Rule",
    "always",
    "huge_event_rule",
    "raises",
    "slow_first_byte_rule",
    "stall_rule",
]


@dataclass(frozen=True)
class Limits:
    """What the client under test is configured to tolerate."""

    #: Seconds the client waits for the next bytes before it gives up (its read timeout).
    read_timeout: float
    #: The largest event the client must read (the provider's ``max_event_size``).
    max_event_size: int


@dataclass(frozen=True)
class Expected:
    """A right outcome: the answer's values, and/or the named error."""

    #: Reading the answer's values (all of them, nothing more) is right.
    values: bool
    #: The name of the :mod:`koala.errors` class that is a right outcome (None: no error is).
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.values and self.error is None:
            raise ValueError("an expectation needs values, an error, or both")

    def describe(self) -> str:
        if self.values and self.error:
            return f"values or {self.error}"
        return self.error or "values"

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "error": self.error}


#: From a fault's (converted) parameters and the client's limits to the right outcome.
Rule = Callable[[Mapping[str, Any], Limits], Expected]

VALUES = Expected(values=True)

STATUS, CONNECTION, TIMING, FRAMING, CONTENT = (
    "status",
    "connection",
    "timing",
    "framing",
    "content type",
)
#: The families in scorecard order.
FAMILIES = (STATUS, CONNECTION, TIMING, FRAMING, CONTENT)


def raises(name: str) -> Expected:
    return Expected(values=False, error=name)


def always(expected: Expected) -> Rule:
    """A rule that does not depend on the parameters."""

    def rule(params: Mapping[str, Any], limits: Limits) -> Expected:
        return expected

    return rule


def stall_rule(params: Mapping[str, Any], limits: Limits) -> Expected:
    # Waited out, a stall ends with the server closing an unfinished body.
    if params["seconds"] < limits.read_timeout:
        return raises("KoalaConnectionError")
    return raises("KoalaTimeoutError")


def slow_first_byte_rule(params: Mapping[str, Any], limits: Limits) -> Expected:
    return VALUES if params["delay"] < limits.read_timeout else raises("KoalaTimeoutError")


def huge_event_rule(params: Mapping[str, Any], limits: Limits) -> Expected:
    # Above the client's limit the error is documented, but reading it all is no failure.
    if params["size"] <= limits.max_event_size:
        return VALUES
    return Expected(values=True, error="EventTooLargeError")
