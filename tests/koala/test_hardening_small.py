"""Small client fixes: absurd Retry-After values, timeout messages without a limit."""

from __future__ import annotations

import pytest

from koala.provider import _seconds
from koala.response import retry_after_seconds, status_error


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("31536000", 31536000.0),  # one year: still taken
        ("31536001", None),
        ("9" * 400, None),  # float() gives inf
        ("1e999", None),
        (None, None),
    ],
)
def test_retry_after_is_none_when_absurd(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value) == seconds


def test_a_rate_limit_with_an_absurd_retry_after_has_none() -> None:
    error = status_error(429, {"Retry-After": "9" * 400}, "slow down")
    assert error is not None and getattr(error, "retry_after", "missing") is None
    assert "inf" not in str(error)


def test_timeout_limits_read_well() -> None:
    assert _seconds(None) == "none"
    assert _seconds(30.0) == "30 s"
    assert _seconds(0.5) == "0.5 s"
