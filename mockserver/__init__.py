"""A local stand-in for the koala.sh chat API: cassette replay, synthetic answers, faults, fuzzing.

>>> from mockserver import MockConfig, create_app
>>> app = create_app(MockConfig(cassette_dir=None, mode="synthetic"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mockserver.config import ConfigError, MockConfig
from mockserver.errors import MockServerError
from mockserver.server.app import create_app
from mockserver.server.endpoint import FAULT_HEADER, SEED_HEADER
from mockserver.server.journal import Journal, JournalEntry
from mockserver.server.state import journal, queue_fault, reset
from mockserver.wire.fault_queue import FaultSpecError

if TYPE_CHECKING:
    from mockserver.wire.faults import FAULTS, FaultScenario, FaultSpec, parse_fault_spec

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "SEED_HEADER",
    "ConfigError",
    "FaultScenario",
    "FaultSpec",
    "FaultSpecError",
    "Journal",
    "JournalEntry",
    "MockConfig",
    "MockServerError",
    "create_app",
    "journal",
    "parse_fault_spec",
    "queue_fault",
    "reset",
]

#: Names this package takes from the fault registry, which it imports on their first use
#: (``koala-mock serve`` replays cassettes without ever loading it; see wire/fault_queue.py).
_FROM_FAULTS = frozenset({"FAULTS", "FaultScenario", "FaultSpec", "parse_fault_spec"})


def __getattr__(name: str) -> Any:
    if name in _FROM_FAULTS:
        from mockserver.wire import faults

        return getattr(faults, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The package's names, the late ones included (``dir()``, completion in a REPL)."""
    return sorted({*globals(), *_FROM_FAULTS})
