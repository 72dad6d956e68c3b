"""A local stand-in for the koala.sh chat API: cassette replay, synthetic answers, faults, fuzzing.

>>> from mockserver import MockConfig, create_app
>>> app = create_app(MockConfig(cassette_dir=None, mode="synthetic"))
"""

from mockserver.config import ConfigError, MockConfig
from mockserver.errors import MockServerError
from mockserver.server.app import create_app
from mockserver.server.endpoint import FAULT_HEADER, SEED_HEADER
from mockserver.server.journal import Journal, JournalEntry
from mockserver.server.state import journal, queue_fault, reset
from mockserver.wire.faults import (
    FAULTS,
    FaultScenario,
    FaultSpec,
    FaultSpecError,
    parse_fault_spec,
)

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
