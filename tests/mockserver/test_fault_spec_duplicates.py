"""A fault parameter given twice is refused wherever a fault spec is read: which value was meant
cannot be known, and taking either one silently hides the caller's mistake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import HEADERS, Client

from koala import build_payload, encode_payload
from mockserver import MockConfig, journal
from mockserver.cli.main import main
from mockserver.wire.faults import FaultSpecError, parse_fault_spec, split_fault_spec

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}]))
TWICE = [
    "rate_limit;retry_after=1;retry_after=2",
    "rate_limit;retry_after=1; retry_after =1",  # the same value twice is still a mistake
    "split_writes;size=3;delay=0;size=4",
]


async def post_json(client: Client, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **headers}
    async with client.post(path, data=json.dumps(body), headers=headers) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


@pytest.mark.parametrize("text", TWICE)
def test_a_parameter_given_twice_is_refused_by_the_parser(text: str) -> None:
    with pytest.raises(FaultSpecError, match=r"parameter '\w+' is given twice"):
        parse_fault_spec(text)
    with pytest.raises(FaultSpecError, match="given twice"):
        MockConfig(cassette_dir=None, default_fault=text)


def test_the_message_shows_both_values() -> None:
    with pytest.raises(FaultSpecError) as caught:
        split_fault_spec("rate_limit;retry_after=1;retry_after=2")
    assert "retry_after=1 and retry_after=2" in str(caught.value)


def test_distinct_parameters_are_still_accepted() -> None:
    spec = parse_fault_spec("split_writes;size=3;delay=0.5")
    assert spec.params == {"size": 3, "delay": 0.5}


@pytest.mark.parametrize("text", TWICE)
async def test_the_fault_header_with_a_parameter_twice_is_a_json_400(
    client: Client, text: str
) -> None:
    async with client.post(
        "/api/gpt/", data=BODY, headers={**HEADERS, "X-Koala-Mock-Fault": text}
    ) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        error = await response.json()
    assert error["error"].startswith("X-Koala-Mock-Fault: ") and "given twice" in error["error"]
    assert journal(client.app).last().status == 400


async def test_the_admin_api_refuses_a_parameter_twice(client: Client) -> None:
    status, error = await post_json(
        client, "/__admin/faults", {"fault": "rate_limit;retry_after=1;retry_after=2"}
    )
    assert status == 400 and "given twice" in error["error"]
    # Once in the spec string and once in "params" is twice as well (even with a default value).
    for in_spec in ("retry_after=5", "retry_after=30"):
        status, error = await post_json(
            client,
            "/__admin/faults",
            {"fault": f"rate_limit;{in_spec}", "params": {"retry_after": 7}},
        )
        assert status == 400 and "'retry_after' is given twice" in error["error"]
        assert '"fault" and in "params"' in error["error"]
    async with client.get("/__admin/faults") as response:
        assert (await response.json())["queue"] == []
    # Given once, in either place, it is queued.
    status, queued = await post_json(
        client, "/__admin/faults", {"fault": "rate_limit", "params": {"retry_after": 7}}
    )
    assert status == 201 and queued["queued"]["params"] == {"retry_after": 7}


async def test_a_stub_with_a_parameter_twice_is_refused(client: Client) -> None:
    status, error = await post_json(
        client, "/__admin/stubs", {"fault": "rate_limit;retry_after=1;retry_after=2"}
    )
    assert status == 400 and "given twice" in error["error"]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_the_fault_flag_with_a_parameter_twice_is_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--fault", "rate_limit;retry_after=1;retry_after=2"]) == 2
    assert "parameter 'retry_after' is given twice" in capsys.readouterr().err
