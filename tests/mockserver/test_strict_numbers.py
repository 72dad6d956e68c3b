"""Numbers written as text are ASCII digits only: ``int()`` and ``float()`` would also take
``1_0``, Unicode digits and ``inf``, and the client would get a value it did not write. Fault
parameters (header, admin API, ``--fault``), the seed header, the admin query and every number
flag refuse them, naming the parameter and the value."""

from __future__ import annotations

import json

import pytest
from conftest import HEADERS, Client

from koala import build_payload, encode_payload
from mockserver.cli.main import main
from mockserver.wire.numbers import strict_float, strict_int

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}]))
NOT_ASCII_INTS = ["١٢", "1_0", "１", "²", "1e3", " 5", "5 ", "+5", "0x10", "5.", "", "-", "5\n"]
NOT_ASCII_FLOATS = ["0_5", "١", "inf", "nan", "1e3", "-inf", " 1", "1.2.3", ".", "1,5", "٠.5"]


@pytest.mark.parametrize("text", NOT_ASCII_INTS)
def test_strict_int_refuses_what_int_would_take(text: str) -> None:
    assert strict_int(text) is None
    assert strict_int(text, negative=True) is None


@pytest.mark.parametrize("text", NOT_ASCII_FLOATS)
def test_strict_float_refuses_what_float_would_take(text: str) -> None:
    assert strict_float(text) is None


def test_the_plain_grammar_is_accepted() -> None:
    assert [strict_int(t) for t in ("0", "12", "007")] == [0, 12, 7]
    assert strict_int("-3") is None and strict_int("-3", negative=True) == -3
    assert [strict_float(t) for t in ("1", "0.5", ".5", "2.")] == [1.0, 0.5, 0.5, 2.0]
    assert strict_float("-0.5", negative=True) == -0.5 and strict_float("-0.5") is None
    assert strict_int("9" * 31) is None  # too long to convert


@pytest.mark.parametrize(
    "spec",
    [
        "rate_limit;retry_after=١٢",
        "rate_limit;retry_after=1_0",
        "stall;seconds=١",
        "slow_first_byte;delay=0_5",
        "server_error;status=５００",
    ],
)
async def test_a_fault_header_number_in_other_digits_is_a_json_400(
    client: Client, spec: str
) -> None:
    async with client.post(
        "/api/gpt/", data=BODY, headers={**HEADERS, "X-Koala-Mock-Fault": spec}
    ) as response:
        assert (response.status, response.content_type) == (400, "application/json")
        error = (await response.json())["error"]
    name, value = spec.split(";")[1].split("=")
    assert f"{name}={value!r}" in error and "X-Koala-Mock-Fault" in error


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("rate_limit", {"retry_after": "1_0"}),
        ("stall", {"seconds": "١"}),
        ("slow_first_byte", {"delay": "0_5"}),
        ("rate_limit;retry_after=١٢", {}),
    ],
)
async def test_an_admin_fault_number_in_other_digits_is_a_json_400(
    client: Client, fault: str, params: dict[str, str]
) -> None:
    async with client.post(
        "/__admin/faults",
        data=json.dumps({"fault": fault, "params": params}),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert (response.status, response.content_type) == (400, "application/json")
        error = (await response.json())["error"]
    assert "is not an integer" in error or "is not a number" in error
    async with client.get("/__admin/faults") as response:
        assert (await response.json())["queue"] == []  # nothing was queued


async def test_typed_json_numbers_and_plain_text_still_work(client: Client) -> None:
    body = {"fault": "slow_first_byte", "params": {"delay": "0.5"}, "times": 1}
    async with client.post("/__admin/faults", json=body) as response:
        assert response.status == 201, await response.text()
    async with client.post("/__admin/faults", json={"fault": "rate_limit;retry_after=7"}) as r:
        assert r.status == 201


@pytest.mark.parametrize("seed", ["1_000", "١٢", "１", "5.0", "-1", "1e3"])
async def test_a_seed_header_in_other_digits_is_a_json_400(client: Client, seed: str) -> None:
    async with client.post(
        "/api/gpt/", data=BODY, headers={**HEADERS, "X-Koala-Mock-Seed": seed}
    ) as response:
        assert (response.status, response.content_type) == (400, "application/json")
        error = (await response.json())["error"]
    assert "X-Koala-Mock-Seed" in error and repr(seed) in error


async def test_a_plain_seed_is_echoed(client: Client) -> None:
    async with client.post(
        "/api/gpt/", data=BODY, headers={**HEADERS, "X-Koala-Mock-Seed": "1000"}
    ) as response:
        assert response.status == 200
        assert response.headers["X-Koala-Mock-Seed"] == "1000"


@pytest.mark.parametrize(
    "flags",
    [
        ["--fault", "rate_limit;retry_after=١٢"],
        ["--fault", "rate_limit;retry_after=1_0"],
        ["--port", "١٢٣٤"],
        ["--port", "8_080"],
        ["--keepalive-timeout", "1_0"],
        ["--keepalive-timeout", "١"],
        ["--seed", "1_0"],
    ],
)
def test_number_flags_in_other_digits_are_usage_errors(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["serve", *flags])  # a refused --fault: the usage error is returned
    except SystemExit as exited:  # a refused flag value: argparse exits
        code = int(str(exited.code))
    assert code == 2
    err = capsys.readouterr().err
    assert flags[0] in err or "fault" in err
    assert repr(flags[1]) in err or "=" + repr(flags[1].split("=")[-1]) in err
