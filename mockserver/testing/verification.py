"""What a test asks of the journal: which requests came, and which broke the contract.

Works on the journal's JSON (``GET /__admin/requests``), so it reads the same data a user of the
admin API sees. ``RequestList.matching`` filters; ``assert_requested`` fails with the nearest
request and how it differs; ``contract_failures`` lists, for the plugin's end-of-test check,
each offending request with its field and problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mockserver.wire.request_filter import RequestFilter, nearest

__all__ = [
    "RequestList",
    "assert_requested",
    "contract_failures",
    "is_api_request",
    "request_filter",
]

HeaderMatch = tuple[str, str] | Iterable[tuple[str, str]] | Mapping[str, str] | None


def is_api_request(entry: Mapping[str, Any]) -> bool:
    """A journal entry for the chat API (``/api/gpt/`` or ``/api/gpt``)."""
    return str(entry.get("path", "")).rstrip("/") == "/api/gpt"


def request_filter(header: HeaderMatch = None, **fields: Any) -> RequestFilter:
    """The filter for ``matching(input=..., model=..., header=(name, value))``: body fields by
    name (``input``, ``model``, ``inputHistory``...), one header pair or several."""
    if header is None:
        pairs: Any = ()
    elif isinstance(header, tuple) and len(header) == 2 and all(isinstance(h, str) for h in header):
        pairs = [header]
    else:
        pairs = header
    return RequestFilter.build(fields, pairs)


class RequestList(list[dict[str, Any]]):
    """The journal's entries (dicts, oldest first), with filters."""

    def matching(self, header: HeaderMatch = None, **fields: Any) -> RequestList:
        """The chat API requests whose body fields and headers equal the ones given."""
        wanted = request_filter(header, **fields)
        return RequestList(
            e
            for e in self
            if is_api_request(e) and wanted.matches(e.get("body"), e.get("headers") or {})
        )

    def api(self) -> RequestList:
        """Only the chat API requests."""
        return RequestList(e for e in self if is_api_request(e))


def assert_requested(
    entries: Iterable[dict[str, Any]],
    times: int | None = None,
    header: HeaderMatch = None,
    **fields: Any,
) -> RequestList:
    """The matching chat API requests; ``AssertionError`` unless there are ``times`` of them
    (``None``: at least one), naming the nearest request and what differs."""
    __tracebackhide__ = True
    wanted = request_filter(header, **fields)
    api = [e for e in entries if is_api_request(e)]
    found = RequestList(e for e in api if wanted.matches(e.get("body"), e.get("headers") or {}))
    if (len(found) == times) if times is not None else found:
        return found
    expected = f"{times} request{'' if times == 1 else 's'}" if times is not None else "a request"
    lines = [
        f"expected {expected} matching {wanted.describe()}; "
        f"got {len(found)} (of {len(api)} chat API request{'' if len(api) == 1 else 's'})"
    ]
    if not found:
        lines += _nearest_lines(api, wanted)
    else:
        lines += [f"  matched: {_name(e)}" for e in found[:10]]
    raise AssertionError("\n".join(lines))


def _nearest_lines(api: list[dict[str, Any]], wanted: RequestFilter) -> list[str]:
    best = nearest([(e.get("body"), e.get("headers") or {}) for e in api], wanted)
    if best is None:
        return ["  no chat API request reached the server"]
    index, differences = best
    return [f"  nearest: {_name(api[index])}, which differs in:"] + [
        f"    {d}" for d in differences
    ]


def _name(entry: Mapping[str, Any]) -> str:
    return (
        f"request #{entry.get('number')} {entry.get('method')} {entry.get('path')} "
        f"(status {entry.get('status')})"
    )


def contract_failures(entries: Iterable[Mapping[str, Any]], *, strict: bool = False) -> list[str]:
    """One block of lines per request that broke the contract: errors always, header and body
    warnings when ``strict``, and a request no cassette matched in replay mode."""
    blocks: list[str] = []
    for entry in entries:
        verdict = entry.get("verdict") or {}
        problems = list(verdict.get("errors") or [])
        if strict:
            problems += verdict.get("warnings") or []
        served = entry.get("served_by") or {}
        lines = [f"- {p.get('message') or p}" for p in problems]
        if served.get("unmatched"):
            lines.append(f"- matched no cassette (mode replay); nearest: {served.get('nearest')}")
            lines += [f"    {d}" for d in served.get("differences") or []]
        if lines:
            blocks.append("\n".join([f"{_name(entry)}:", *(f"  {line}" for line in lines)]))
    return blocks
