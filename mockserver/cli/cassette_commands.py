"""The cassette subcommands, one module each: :mod:`mockserver.cli.record`,
:mod:`mockserver.cli.verify` (this module keeps the old import path)."""

from __future__ import annotations

from mockserver.cli.record import add_record_command, run_record
from mockserver.cli.verify import add_verify_command, run_verify, verify_exit_code

__all__ = [
    "add_record_command",
    "add_verify_command",
    "run_record",
    "run_verify",
    "verify_exit_code",
]
