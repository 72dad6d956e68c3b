"""What a good client does with each fault of :data:`mockserver.wire.faults.FAULTS`. Pure.

Adding a fault means stating here what a resilient client does with it: read the whole answer,
raise the documented error (a class of :mod:`koala.errors`, named), or either. Some outcomes
depend on the fault's parameters and the client's own limits (a stall shorter than the client's
read timeout is waited out; a longer one must end in a timeout error), so each entry is a rule
from the parameters to an :class:`Expected`. ``koala-mock audit`` scores clients against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mockserver.wire.faults import FAULTS, FaultSpec


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


VALUES = Expected(values=True)


def error(name: str) -> Expected:
    return Expected(values=False, error=name)


Rule = Callable[[Mapping[str, Any], Limits], Expected]


def _always(expected: Expected) -> Rule:
    return lambda params, limits: expected


def _stall(params: Mapping[str, Any], limits: Limits) -> Expected:
    # Waited out, a stall ends with the server closing an unfinished body.
    if params["seconds"] < limits.read_timeout:
        return error("KoalaConnectionError")
    return error("KoalaTimeoutError")


def _slow_first_byte(params: Mapping[str, Any], limits: Limits) -> Expected:
    return VALUES if params["delay"] < limits.read_timeout else error("KoalaTimeoutError")


def _huge_event(params: Mapping[str, Any], limits: Limits) -> Expected:
    # Above the client's limit the error is documented, but reading it all is no failure.
    if params["size"] <= limits.max_event_size:
        return VALUES
    return Expected(values=True, error="EventTooLargeError")


@dataclass(frozen=True)
class FaultExpectation:
    """The family a fault belongs to (for the scorecard) and the rule for its right outcome."""

    family: str
    rule: Rule


STATUS, CONNECTION, TIMING, FRAMING, CONTENT = (
    "status",
    "connection",
    "timing",
    "framing",
    "content type",
)
#: The scorecard's families in display order (``fuzz`` is the audit's own: seeded rewritings).
FAMILIES = (STATUS, CONNECTION, TIMING, FRAMING, CONTENT)

EXPECTATIONS: dict[str, FaultExpectation] = {
    "rate_limit": FaultExpectation(STATUS, _always(error("RateLimitError"))),
    "payment_required": FaultExpectation(STATUS, _always(error("RateLimitError"))),
    "cloudflare": FaultExpectation(STATUS, _always(error("CloudflareError"))),
    "cloudflare_503": FaultExpectation(STATUS, _always(error("CloudflareError"))),
    "bot_detected": FaultExpectation(STATUS, _always(error("BotDetectedError"))),
    "server_error": FaultExpectation(STATUS, _always(error("ResponseStatusError"))),
    "truncate": FaultExpectation(CONNECTION, _always(error("KoalaConnectionError"))),
    "disconnect": FaultExpectation(CONNECTION, _always(error("KoalaConnectionError"))),
    "stall": FaultExpectation(TIMING, _stall),
    "slow_first_byte": FaultExpectation(TIMING, _slow_first_byte),
    "split_writes": FaultExpectation(TIMING, _always(VALUES)),
    "malformed_json": FaultExpectation(FRAMING, _always(error("MalformedEventError"))),
    "invalid_utf8": FaultExpectation(FRAMING, _always(error("InvalidEncodingError"))),
    "done_marker": FaultExpectation(FRAMING, _always(VALUES)),
    "bom": FaultExpectation(FRAMING, _always(VALUES)),
    "huge_event": FaultExpectation(FRAMING, _huge_event),
    "crlf": FaultExpectation(FRAMING, _always(VALUES)),
    "cr": FaultExpectation(FRAMING, _always(VALUES)),
    "keepalive_comments": FaultExpectation(FRAMING, _always(VALUES)),
    "html_200": FaultExpectation(CONTENT, _always(error("UnexpectedContentTypeError"))),
    # The mislabelled body is a complete event stream: reading it is lenient, not wrong.
    "wrong_content_type": FaultExpectation(
        CONTENT, _always(Expected(values=True, error="UnexpectedContentTypeError"))
    ),
    "json_reply": FaultExpectation(CONTENT, _always(VALUES)),
}


def expectation_for(name: str) -> FaultExpectation:
    try:
        return EXPECTATIONS[name]
    except KeyError:
        raise KeyError(f"fault {name!r} has no expected outcome in {__name__}") from None


def expected_outcome(spec: FaultSpec, limits: Limits) -> Expected:
    """The right outcome of ``spec`` for a client with ``limits``."""
    return expectation_for(spec.name).rule(spec.params, limits)


def family_of(name: str) -> str:
    return expectation_for(name).family


def missing_expectations() -> list[str]:
    """Faults of the catalogue with no expected outcome (a test keeps this empty)."""
    return [name for name in FAULTS if name not in EXPECTATIONS]
