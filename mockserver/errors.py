"""The one base of every exception the mock server raises on purpose.

Catch :class:`MockServerError` to handle anything the mock server refuses or fails at (a bad
fault spec, a broken cassette, an upstream that did not answer...). Each subclass also keeps the
builtin base callers already catch (``FaultSpecError`` is a ``ValueError``, ``CassetteExistsError``
a ``FileExistsError``, ``MockAdminError`` a ``RuntimeError``).

>>> from mockserver.wire.faults import FaultSpecError
>>> issubclass(FaultSpecError, MockServerError) and issubclass(FaultSpecError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["MockServerError"]


class MockServerError(Exception):
    """Something the mock server (or its CLI, recorder or test helpers) refused or failed at."""
