"""Which requests a test means: body fields and headers that must be equal. Pure, no I/O.

One rule for three uses: stubs' ``when`` (:mod:`mockserver.wire.stubs`), the journal filters of
``GET /__admin/requests``, and the plugin's ``requests.matching(...)`` / ``assert_requested``.

>>> wanted = RequestFilter.build({"input": "Hello", "model": "gpt-4o-mini"})
>>> wanted.matches({"input": "Hello", "model": "gpt-4o-mini", "inputHistory": []}, {})
True
>>> wanted.differences({"input": "Hi", "model": "gpt-4o-mini"}, {})
["input: 'Hi' != 'Hello'"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from mockserver.errors import MockServerError

__all__ = ["FilterError", "RequestFilter", "nearest", "same_json"]

_MISSING = "nothing (not in the request)"


class FilterError(MockServerError, ValueError):
    """A filter that cannot be used (the message names the bad part)."""


class RequestFilter(NamedTuple):
    """Body fields that must equal the given JSON values, and headers that must equal theirs
    (names case-insensitive). An empty filter matches every request, and is false."""

    fields: tuple[tuple[str, Any], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(
        cls,
        fields: Mapping[str, Any] | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    ) -> RequestFilter:
        """A filter from ``{field: value}`` and header pairs; :class:`FilterError` when bad."""
        fields = dict(fields or {})
        for name in fields:
            if not isinstance(name, str) or not name:
                raise FilterError(f"a body field name must be a non-empty string, got {name!r}")
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        checked: list[tuple[str, str]] = []
        for pair in pairs:
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not all(isinstance(part, str) for part in pair)
            ):
                raise FilterError(f"header: expected (name, value) strings, got {pair!r}")
            checked.append((pair[0], pair[1]))
        return cls(tuple(fields.items()), tuple(checked))

    def __bool__(self) -> bool:
        return bool(self.fields or self.headers)

    def differences(self, body: Any, headers: Mapping[str, str]) -> list[str]:
        """What differs between a request and this filter, one line each (empty: it matches)."""
        out: list[str] = []
        for name, wanted in self.fields:
            if not isinstance(body, dict) or name not in body:
                out.append(f"{name}: {_MISSING} != {wanted!r}")
            elif not same_json(body[name], wanted):
                out.append(f"{name}: {_short(body[name])} != {_short(wanted)}")
        if self.headers:
            lowered = {k.lower(): v for k, v in headers.items()}
            for name, wanted in self.headers:
                got = lowered.get(name.lower())
                if got != wanted:
                    shown = _MISSING if got is None else repr(got)
                    out.append(f"header {name}: {shown} != {wanted!r}")
        return out

    def matches(self, body: Any, headers: Mapping[str, str]) -> bool:
        if isinstance(body, dict):
            for name, wanted in self.fields:
                if name not in body or not same_json(body[name], wanted):
                    return False
        elif self.fields:
            return False
        return not self.headers or not self.differences(body, headers)

    def describe(self) -> str:
        """``input='Hello', header Visitor-ID='...'`` (what the filter asks for)."""
        parts = [f"{name}={value!r}" for name, value in self.fields]
        parts += [f"header {name}={value!r}" for name, value in self.headers]
        return ", ".join(parts) or "any request"

    def to_json(self) -> dict[str, Any]:
        return {"fields": dict(self.fields), "headers": [list(h) for h in self.headers]}


def same_json(got: Any, wanted: Any) -> bool:
    """Equal as JSON values: ``1 == 1.0``, but ``True`` is not ``1`` and a list is not a tuple
    only by type (``(1, 2)`` equals ``[1, 2]``, as after a JSON round trip)."""
    if isinstance(got, bool) or isinstance(wanted, bool):
        return isinstance(got, bool) and isinstance(wanted, bool) and got == wanted
    if isinstance(got, (list, tuple)) and isinstance(wanted, (list, tuple)):
        return len(got) == len(wanted) and all(map(same_json, got, wanted))
    if isinstance(got, dict) and isinstance(wanted, dict):
        return got.keys() == wanted.keys() and all(same_json(got[k], wanted[k]) for k in got)
    if isinstance(got, (list, tuple, dict)) or isinstance(wanted, (list, tuple, dict)):
        return False
    return bool(type(got) is type(wanted) or _both_numbers(got, wanted)) and got == wanted


def _both_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float))


def nearest(
    candidates: Sequence[tuple[Any, Mapping[str, str]]], wanted: RequestFilter
) -> tuple[int, list[str]] | None:
    """The index of the candidate ``(body, headers)`` with the fewest differences, and them."""
    best: tuple[int, list[str]] | None = None
    for index, (body, headers) in enumerate(candidates):
        found = wanted.differences(body, headers)
        if best is None or len(found) < len(best[1]):
            best = (index, found)
    return best


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
