"""Every exception the mock server raises on purpose shares one base, and keeps its builtin one."""

from __future__ import annotations

import pytest

from mockserver import ConfigError, MockConfig, MockServerError, parse_fault_spec
from mockserver.cassettes.cassette import CassetteError, CassetteExistsError
from mockserver.cli.main import UsageError
from mockserver.cli.messages_file import MessagesFileError
from mockserver.testing.embedded import MockAdminError
from mockserver.upstream.client import (
    RecordingError,
    StreamInterruptedError,
    UpstreamUnreachableError,
)
from mockserver.upstream.verify import VerifyUnreachableError
from mockserver.wire.faults import FaultSpecError


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (FaultSpecError, ValueError),
        (ConfigError, ValueError),
        (MessagesFileError, ValueError),
        (CassetteError, Exception),
        (CassetteExistsError, FileExistsError),
        (MockAdminError, RuntimeError),
        (UsageError, Exception),
        (RecordingError, Exception),
        (UpstreamUnreachableError, RecordingError),
        (StreamInterruptedError, RecordingError),
        (VerifyUnreachableError, UpstreamUnreachableError),
    ],
)
def test_one_base_and_the_builtin_one(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, MockServerError)
    assert issubclass(error, builtin)


def test_bad_config_and_fault_are_caught_by_the_base() -> None:
    with pytest.raises(MockServerError, match="mode 'nope'"):
        MockConfig(cassette_dir=None, mode="nope")
    with pytest.raises(ConfigError, match="latency"):
        MockConfig(cassette_dir=None, latency=-1)
    with pytest.raises(MockServerError, match="unknown fault 'nope'"):
        parse_fault_spec("nope")


def test_a_fault_is_registered_once_with_its_params() -> None:
    from mockserver.wire.expectations import STATUS, VALUES, always
    from mockserver.wire.faults import FAULTS, FaultContext, fault, make_fault_spec
    from mockserver.wire.plan import ResponsePlan

    assert FAULTS["rate_limit"].build.__name__ == "_rate_limit"
    assert [p.name for p in FAULTS["truncate"].params] == ["events", "mid_event"]
    with pytest.raises(ValueError, match="registered twice"):

        @fault("rate_limit", "again", "none", family=STATUS, expected=always(VALUES))
        def _again(ctx: FaultContext) -> ResponsePlan:
            raise AssertionError

    assert make_fault_spec("rate_limit").scenario.description.startswith("429")
