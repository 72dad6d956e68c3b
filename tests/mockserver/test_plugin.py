"""The pytest plugin: fixtures with no conftest, in sync and async tests, and the live marker."""

from __future__ import annotations

import pytest
from pytester_runs import run_inline, run_subprocess

from koala import RateLimitError
from mockserver.config import MockConfig
from mockserver.testing.embedded import KoalaMock, MockAdminError
from mockserver.testing.pytest_plugin import MockedKoala

pytest_plugins = ["pytester"]

HI = [{"role": "user", "content": "hi"}]
USER_TESTS = """
import pytest
from koala import RateLimitError

HI = [{"role": "user", "content": "hi"}]


def test_sync_test_gets_an_answer(koala_mock, koala_provider):
    answer = "".join(koala_provider.create_completion("gpt-4o-mini", HI))
    assert answer
    assert koala_mock.api_endpoint.startswith("http://127.0.0.1:")
    assert koala_mock.api_endpoint.endswith("/api/gpt/")
    assert len(koala_mock.requests) == 1


@pytest.mark.asyncio
async def test_async_test_gets_an_answer(koala_mock, koala_provider):
    answer = await koala_provider.create_async("gpt-4o-mini", [{"role": "user", "content": "hi"}])
    assert answer
    assert len(koala_mock.requests) == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_async_test_on_a_module_loop(koala_provider):
    chunks = [c async for c in koala_provider.create_async_generator(
        "gpt-4o-mini", [{"role": "user", "content": "hi"}])]
    assert chunks


@pytest.mark.asyncio
async def test_fault_then_recovery(koala_mock, koala_provider):
    koala_mock.fault("rate_limit", times=1)
    with pytest.raises(RateLimitError):
        await koala_provider.create_async("gpt-4o-mini", [{"role": "user", "content": "hi"}])
    assert await koala_provider.create_async("gpt-4o-mini", [{"role": "user", "content": "hi"}])
    assert len(koala_mock.requests) == 2


def test_each_test_gets_a_fresh_journal(koala_mock):
    assert koala_mock.requests == []


@pytest.mark.live
def test_live_is_skipped_by_default():
    raise AssertionError("a live test ran without --live")
"""


def test_fixtures_work_without_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = run_subprocess(pytester, "-rs")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(["*run pytest with --live*"])


def test_live_tests_run_with_the_live_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_live="""
import pytest

@pytest.mark.live
def test_live():
    pass

def test_offline():
    pass
"""
    )
    run_inline(pytester, "--live").assert_outcomes(passed=2)
    run_inline(pytester).assert_outcomes(passed=1, skipped=1)


def test_koala_mock_config_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_config="""
import pytest
from mockserver.config import MockConfig

@pytest.fixture
def koala_mock_config():
    return MockConfig(mode="synthetic", default_fault="server_error")

def test_every_request_fails(koala_mock, koala_provider):
    from koala import ResponseStatusError
    assert koala_mock.config.default_fault == "server_error"
    with pytest.raises(ResponseStatusError):
        "".join(koala_provider.create_completion("gpt-4o-mini", [{"role": "user", "content": "x"}]))
"""
    )
    run_inline(pytester).assert_outcomes(passed=1)


# -- the fixtures in this very run (the plugin is loaded by its entry point) ----------------------


def test_the_default_config_does_not_wait_for_recorded_timing(
    koala_mock_config: MockConfig,
) -> None:
    assert koala_mock_config.speed == 0
    assert koala_mock_config.scaled(10.0) == 0.0
    assert koala_mock_config == MockConfig(speed=0)  # otherwise the usual defaults


def test_reset_clears_the_journal_and_queued_faults(
    koala_mock: KoalaMock, koala_provider: MockedKoala
) -> None:
    assert "".join(koala_provider.create_completion("gpt-4o-mini", HI))
    koala_mock.fault("rate_limit", times=3)
    assert len(koala_mock.requests) == 1
    koala_mock.reset()
    assert koala_mock.requests == []
    assert "".join(koala_provider.create_completion("gpt-4o-mini", HI))


def test_fault_times_counts_down(koala_mock: KoalaMock, koala_provider: MockedKoala) -> None:
    koala_mock.fault("rate_limit", times=2)
    for _ in range(2):
        with pytest.raises(RateLimitError):
            "".join(koala_provider.create_completion("gpt-4o-mini", HI))
    assert "".join(koala_provider.create_completion("gpt-4o-mini", HI))
    assert [entry["status"] for entry in koala_mock.requests] == [429, 429, 200]


def test_an_unknown_fault_is_refused_with_the_servers_reason(koala_mock: KoalaMock) -> None:
    with pytest.raises(MockAdminError, match="no_such_fault"):
        koala_mock.fault("no_such_fault")


def test_the_journal_holds_the_providers_payload(
    koala_mock: KoalaMock, koala_provider: MockedKoala
) -> None:
    from koala import build_payload

    messages = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ]
    "".join(koala_provider.create_completion("gpt-4o-mini", messages))
    (entry,) = koala_mock.requests
    assert entry["body"] == build_payload("gpt-4o-mini", messages)


async def test_provider_keywords_pass_through(koala_provider: MockedKoala) -> None:
    visitor = "abcdefghij0123456789"
    assert await koala_provider.create_async("gpt-4o-mini", HI, visitor_id=visitor)


def test_a_stopped_mock_has_no_address() -> None:
    mock = KoalaMock(MockConfig(mode="synthetic"))
    with pytest.raises(RuntimeError, match="not running"):
        _ = mock.api_endpoint
    with mock:
        assert mock.port > 0
    mock.stop()  # a second stop is harmless
    with pytest.raises(RuntimeError, match="not running"):
        _ = mock.url
    with mock:  # and it can start again
        assert mock.requests == []


def test_a_taken_port_fails_start_with_the_os_error() -> None:
    with KoalaMock(MockConfig(mode="synthetic")) as first:
        second = KoalaMock(MockConfig(mode="synthetic"), port=first.port)
        with pytest.raises(OSError):
            second.start()
        with pytest.raises(RuntimeError, match="not running"):
            _ = second.api_endpoint


def test_the_default_config_is_visible() -> None:
    with KoalaMock() as mock:
        assert mock.config.mode == "auto"
