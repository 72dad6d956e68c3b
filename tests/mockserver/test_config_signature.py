"""The public constructors written out by hand keep the arguments and defaults they had as
dataclasses (a default changed by mistake would change every user's server)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from koala.sse import EventStreamDecoder
from mockserver.config import MockConfig

#: MockConfig's arguments in order, with their defaults (the cassette directory's is read from
#: the environment when the config is made, so it has a sentinel).
MOCK_CONFIG_DEFAULTS: dict[str, Any] = {
    "mode": "auto",
    "seed": None,
    "strict": False,
    "latency": 0.0,
    "speed": 1.0,
    "default_fault": None,
    "max_body_size": 1_048_576,
    "max_cassette_size": 16 * 1024 * 1024,
    "admin_token": None,
    "keepalive_timeout": 15.0,
    "journal_max_bytes": 64 * 1024 * 1024,
    "max_generated_bytes": 128 * 1024 * 1024,
    "record_upstream": None,
    "record_dir": None,
    "record_mode": "new_episodes",
    "scrub": True,
    "keep_headers": (),
    "keep_query": (),
    "api_key": None,
}


def test_mock_config_keeps_its_arguments_and_defaults() -> None:
    parameters = inspect.signature(MockConfig).parameters
    assert list(parameters) == ["cassette_dir", *MOCK_CONFIG_DEFAULTS]
    assert {name: parameters[name].default for name in MOCK_CONFIG_DEFAULTS} == (
        MOCK_CONFIG_DEFAULTS
    )
    config = MockConfig(cassette_dir=None)
    assert {name: getattr(config, name) for name in MOCK_CONFIG_DEFAULTS} == MOCK_CONFIG_DEFAULTS


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("mode", "replay"),
        ("speed", 2.0),
        ("record_dir", Path("elsewhere")),
        ("record_mode", "all"),
        ("keep_headers", ("x-trace",)),
        ("max_body_size", 1000),
    ],
)
def test_configs_differing_in_one_field_are_not_equal(name: str, other: Any) -> None:
    assert MockConfig(cassette_dir=None) != MockConfig(cassette_dir=None, **{name: other})


def test_the_event_stream_decoder_keeps_its_one_argument_and_default() -> None:
    parameters = inspect.signature(EventStreamDecoder).parameters
    assert list(parameters) == ["max_event_size"]
    assert parameters["max_event_size"].default == 4 * 1024 * 1024
    assert EventStreamDecoder().max_event_size == 4 * 1024 * 1024
