"""Every shipped cassette loads through pytest-recording's ``@pytest.mark.vcr`` and replays
through the provider, with ``koala.testing.vcr_config()`` as the ``vcr_config`` fixture."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import decode_stream

from koala import CloudflareError, Koala, RateLimitError
from koala.testing import vcr_config as koala_vcr_config
from mockserver.cassettes.cassette import load_cassette_dir
from mockserver.cassettes.handmade import CASSETTE_DIR

SHIPPED, _ = load_cassette_dir(CASSETTE_DIR)
ERRORS: dict[str, type[Exception]] = {
    "rate_limited_429": RateLimitError,
    "cloudflare_403": CloudflareError,
}


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return koala_vcr_config()


def _with_cassette(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.vcr(str(CASSETTE_DIR / f"{name}.yaml")), id=name)


@pytest.mark.parametrize("name", [_with_cassette(c.name) for c in SHIPPED])
async def test_every_shipped_cassette_replays_through_pytest_recording(name: str, vcr: Any) -> None:
    cassette = next(c for c in SHIPPED if c.name == name)
    messages = cassette.provenance["messages"]
    interaction = cassette.interactions[0]
    model = interaction.request_json()["model"]
    if name in ERRORS:
        with pytest.raises(ERRORS[name]):
            await Koala.create_async(model, messages)
    elif interaction.request_header("Authorization"):  # the keyed shape's JSON reply
        options = {"api_key": "sk-test", "json_reply": True}
        values = [v async for v in Koala.create_async_generator(model, messages, **options)]
        assert values == [json.loads(interaction.body)["output"]]
    else:
        values = [v async for v in Koala.create_async_generator(model, messages)]
        assert values == decode_stream(interaction.body)
    assert vcr.play_count == 1
    assert vcr.record_mode == "none"


def test_the_set_checked_here_is_every_shipped_cassette() -> None:
    assert len(SHIPPED) >= 8
