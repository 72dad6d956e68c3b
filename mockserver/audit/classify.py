"""Sort one run into an outcome and say whether it passes. Pure.

- **correct**: no error, and the values a good client reads (chunks may be split differently
  when they are all text);
- **typed error**: the documented error for the fault (or an exception the user accepts), after
  none but the answer's values;
- **raw exception**: any other exception (its class is named);
- **hang**: no end within the audit's time limit;
- **silent loss**: ended without an error, but values are missing or cut, or an error was due;
- **wrong values**: values the answer does not have (with or without an error).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mockserver.wire.expectations import Expected

__all__ = [
    "DETAIL_CHARS",
    "Outcome",
    "RunResult",
    "Verdict",
    "classify",
    "error_name",
    "is_loss",
    "same_values",
]

DETAIL_CHARS = 120


class Outcome(str, enum.Enum):
    CORRECT = "correct"
    TYPED_ERROR = "typed error"
    RAW_EXCEPTION = "raw exception"
    HANG = "hang"
    SILENT_LOSS = "silent loss"
    WRONG_VALUES = "wrong values"


@dataclass(frozen=True)
class RunResult:
    """What the client did: the values it gave before it ended, and how it ended."""

    values: Sequence[Any]
    error: BaseException | None = None
    hung: bool = False


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    passed: bool
    detail: str


def error_name(exc: BaseException) -> str:
    """``module.Class`` (builtins without the module)."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def classify(
    expected: Expected,
    result: RunResult,
    answer: Sequence[Any],
    full: Sequence[Any],
    accepts: Callable[[BaseException, str], bool],
) -> Verdict:
    """The outcome of ``result``.

    ``answer`` is what a good client reads from this stream, ``full`` the unbroken answer the
    fault started from; ``accepts(exc, name)`` says whether ``exc`` counts as the error ``name``.
    """
    got = list(result.values)
    if result.hung:
        return Verdict(Outcome.HANG, False, f"no end within the time limit, {_count(got)} so far")
    if result.error is not None:
        exc = result.error
        if expected.error is not None and accepts(exc, expected.error):
            if got and not (same_values(got, full) or is_loss(got, full)):
                # The right error, after values the answer does not have.
                return Verdict(
                    Outcome.WRONG_VALUES, False, f"got {_preview(got)} before {error_name(exc)}"
                )
            return Verdict(Outcome.TYPED_ERROR, True, f"{error_name(exc)}: {_short(exc)}")
        return Verdict(Outcome.RAW_EXCEPTION, False, f"{error_name(exc)}: {_short(exc)}")
    if expected.values and same_values(got, answer):
        return Verdict(Outcome.CORRECT, True, _count(got))
    wanted = f"expected {expected.describe()}"
    if is_loss(got, full):
        kept = f"{len(got)} of {len(full)} values" if got else "no values"
        return Verdict(Outcome.SILENT_LOSS, False, f"ended without an error, {kept}; {wanted}")
    return Verdict(Outcome.WRONG_VALUES, False, f"got {_preview(got)}; {wanted}")


def same_values(got: Sequence[Any], want: Sequence[Any]) -> bool:
    """Equal values, or equal text when both are all ``str`` (chunked differently)."""
    if list(got) == list(want):
        return True
    return _all_text(got) and _all_text(want) and "".join(got) == "".join(want)


def is_loss(got: Sequence[Any], full: Sequence[Any]) -> bool:
    """``got`` is ``full`` with something left out (nothing added, nothing changed)."""
    if same_values(got, full):
        return False
    if _is_subsequence(got, full):
        return True
    return _all_text(got) and _all_text(full) and "".join(got) in "".join(full)


def _is_subsequence(got: Sequence[Any], full: Sequence[Any]) -> bool:
    remaining = iter(full)
    return all(any(item == value for value in remaining) for item in got)


def _all_text(values: Sequence[Any]) -> bool:
    return all(isinstance(v, str) for v in values)


def _count(values: Sequence[Any]) -> str:
    return f"{len(values)} value{'s' if len(values) != 1 else ''}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


def _preview(values: Sequence[Any]) -> str:
    text = repr("".join(values)) if _all_text(values) else repr(list(values))
    return text if len(text) <= 80 else text[:80] + "…"
