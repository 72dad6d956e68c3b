"""A local stand-in for the koala.sh chat API: cassette replay, synthetic answers, faults, fuzzing.

>>> from mockserver import MockConfig, create_app
>>> app = create_app(MockConfig(cassette_dir=None, mode="synthetic"))
"""

from .app import create_app
from .config import MockConfig
from .endpoint import FAULT_HEADER, SEED_HEADER
from .faults import FAULTS, FaultScenario, FaultSpec, FaultSpecError, parse_fault_spec
from .journal import Journal, JournalEntry
from .state import journal, queue_fault, reset

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "SEED_HEADER",
    "FaultScenario",
    "FaultSpec",
    "FaultSpecError",
    "Journal",
    "JournalEntry",
    "MockConfig",
    "create_app",
    "journal",
    "parse_fault_spec",
    "queue_fault",
    "reset",
]
