"""pytest fixtures for the mock server, registered through the ``pytest11`` entry point.

Installing koala-harness is enough; no conftest needed:

- ``koala_mock``: a fresh in-process mock server on a free 127.0.0.1 port for each test
  (:class:`mockserver.testing.embedded.KoalaMock`: ``.api_endpoint``, ``.url``, ``.requests``,
  ``.assert_requested(...)``, ``.respond_with(...)``, ``.fault(...)``, ``.reset()``,
  ``.config``). ``KOALA_API_ENDPOINT`` points at it for the test (and is restored after).
- ``koala_mock_session``: one server for the whole session (per pytest-xdist worker), reset
  before each test that uses it (journal, queued faults, stubs); made from
  ``koala_mock_session_config``.
- ``koala_provider``: the ``Koala`` provider with ``api_endpoint`` preset to ``koala_mock``.
- ``koala_mock_config``: the ``MockConfig`` the server is made from: the defaults, except
  ``speed=0``, so recorded timing is not waited for (a test matching ``long_answer`` would
  otherwise take about 10 s). Override it in a conftest or test module to change the mode,
  cassettes, seed, faults... or to replay with the recorded timing (``speed=1``) in a timing test.
- The contract: a test that passed fails after all when a request it made got a contract error,
  with ``strict`` (``koala_mock_config``'s, or ``@pytest.mark.koala_mock(strict=True)``) also for
  a header or body warning, and in ``replay`` mode for a request no cassette matched. A test that
  sends bad requests on purpose calls ``koala_mock.allow_contract_errors()`` or is marked
  ``@pytest.mark.koala_mock(allow_contract_errors=True)``.
- ``--live`` and the ``live`` marker: tests marked ``@pytest.mark.live`` talk to the real
  koala.sh and are skipped unless pytest runs with ``--live``.

The server runs on an event loop of its own in a background thread, so the fixtures work in
sync tests and in async tests on any pytest-asyncio loop scope, and a test that blocks its own
loop cannot stall the server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

__all__ = [
    "LIVE_OPTION",
    "MockedKoala",
    "koala_mock",
    "koala_mock_config",
    "koala_mock_session",
    "koala_mock_session_config",
    "koala_provider",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_recording_configure",
    "pytest_runtest_call",
]

if TYPE_CHECKING:
    from mockserver.config import MockConfig
    from mockserver.testing.embedded import KoalaMock

LIVE_OPTION = "--live"
#: Tests replay as fast as possible (no waiting for recorded timing or latency).
TEST_SPEED = 0.0
_LIVE_HELP = "run tests marked 'live' (they talk to the real koala.sh service)"
ENDPOINT_ENV_VAR = "KOALA_API_ENDPOINT"
_MARKER = "koala_mock"
_MARKER_HELP = (
    "koala_mock(strict=False, allow_contract_errors=False): how the mock server's contract "
    "check judges this test's requests"
)
#: The mock servers a test uses, for the end-of-test contract check.
_MOCKS_USED = pytest.StashKey[list["KoalaMock"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("koala-mock", "Koala mock server")
    group.addoption(LIVE_OPTION, action="store_true", default=False, help=_LIVE_HELP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: talks to the live koala.sh service; skipped unless --live is given"
    )
    config.addinivalue_line("markers", f"{_MARKER}: {_MARKER_HELP}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the test body: fail a passed test whose requests broke the contract; for a failed
    one, show them in a report section."""
    try:
        result = yield
    except BaseException:
        for mock in item.stash.get(_MOCKS_USED, []):
            _report_contract(item, mock)
        raise
    for mock in item.stash.get(_MOCKS_USED, []):
        if not mock.running:  # the test stopped it: its journal is gone
            continue
        failures = mock.contract_failures()
        if failures:
            from mockserver.testing.embedded import contract_message

            pytest.fail(contract_message(failures, mock.strict_contract), pytrace=False)
    return result


def _report_contract(item: pytest.Item, mock: KoalaMock) -> None:
    from mockserver.testing.embedded import contract_message

    try:
        failures = mock.contract_failures() if mock.running else []
    except Exception as exc:  # the server is gone; the test's own failure matters more
        failures = [f"(the journal could not be read: {exc})"]
    if failures:
        message = contract_message(failures, mock.strict_contract)
        item.add_report_section("call", "koala-mock", message)


def _begin_test(request: pytest.FixtureRequest, mock: KoalaMock) -> None:
    """Apply the test's ``koala_mock`` marker and enrol the server in the end-of-test check."""
    marker = request.node.get_closest_marker(_MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    unknown = sorted(set(options) - {"strict", "allow_contract_errors"})
    if unknown or (marker is not None and marker.args):
        raise pytest.UsageError(
            f"@pytest.mark.koala_mock takes strict= and allow_contract_errors= only, "
            f"got {unknown or list(marker.args if marker else [])}"
        )
    mock.begin_test(
        strict=options.get("strict"), allow_errors=bool(options.get("allow_contract_errors"))
    )
    request.node.stash.setdefault(_MOCKS_USED, []).append(mock)


@contextlib.contextmanager
def _for_this_test(request: pytest.FixtureRequest, mock: KoalaMock) -> Iterator[KoalaMock]:
    """``mock`` begun for the test (:func:`_begin_test`), with ``KOALA_API_ENDPOINT`` pointing
    at it until the test ends; then the variable is put back as it was."""
    _begin_test(request, mock)
    old = os.environ.get(ENDPOINT_ENV_VAR)
    os.environ[ENDPOINT_ENV_VAR] = mock.api_endpoint
    try:
        yield mock
    finally:
        if old is None:
            os.environ.pop(ENDPOINT_ENV_VAR, None)
        else:
            os.environ[ENDPOINT_ENV_VAR] = old


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-recording, when it is installed
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Register ``koala.testing``'s ``json_body`` matcher on pytest-recording's VCR, so a
    ``vcr_config`` fixture returning ``koala.testing.vcr_config()`` works as it is."""
    from koala.testing import register_matchers

    register_matchers(vcr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption(LIVE_OPTION):
        return
    skip_live = pytest.mark.skip(reason="talks to the live koala.sh; run pytest with --live")
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip_live)


class MockedKoala:
    """``koala.Koala`` with ``api_endpoint`` preset to a mock server (other keywords pass on)."""

    def __init__(self, api_endpoint: str) -> None:
        self.api_endpoint = api_endpoint

    def _with_endpoint(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("api_endpoint", self.api_endpoint)
        return kwargs

    def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        from koala import Koala

        return Koala.create_async_generator(model, messages, **self._with_endpoint(kwargs))

    async def create_async(self, model: str, messages: Any, **kwargs: Any) -> str:
        from koala import Koala

        return await Koala.create_async(model, messages, **self._with_endpoint(kwargs))

    def create_completion(self, model: str, messages: Any, **kwargs: Any) -> Iterator[Any]:
        from koala import Koala

        return Koala.create_completion(model, messages, **self._with_endpoint(kwargs))


@pytest.fixture
def koala_mock_config() -> MockConfig:
    """The server's settings (as fast as possible: ``speed=0``); override this fixture to
    customise ``koala_mock``."""
    from mockserver.config import MockConfig

    return MockConfig(speed=TEST_SPEED)


@pytest.fixture
def koala_mock(
    koala_mock_config: MockConfig, request: pytest.FixtureRequest
) -> Iterator[KoalaMock]:
    """A mock koala.sh server for this test, on a free loopback port; ``KOALA_API_ENDPOINT``
    points at it until the test ends."""
    from mockserver.testing.embedded import KoalaMock

    with KoalaMock(koala_mock_config, shutdown_timeout=0.5) as mock, _for_this_test(request, mock):
        yield mock


@pytest.fixture(scope="session")
def koala_mock_session_config() -> MockConfig:
    """The settings of ``koala_mock_session`` (``speed=0``, as ``koala_mock_config``)."""
    from mockserver.config import MockConfig

    return MockConfig(speed=TEST_SPEED)


@pytest.fixture(scope="session")
def _koala_mock_session_server(koala_mock_session_config: MockConfig) -> Iterator[KoalaMock]:
    from mockserver.testing.embedded import KoalaMock

    with KoalaMock(koala_mock_session_config, shutdown_timeout=0.5) as mock:
        yield mock


@pytest.fixture
def koala_mock_session(
    _koala_mock_session_server: KoalaMock, request: pytest.FixtureRequest
) -> Iterator[KoalaMock]:
    """One mock server for the session (one per pytest-xdist worker), reset for each test:
    journal, queued faults and stubs. ``KOALA_API_ENDPOINT`` points at it during the test."""
    mock = _koala_mock_session_server
    mock.reset()
    with _for_this_test(request, mock):
        yield mock


@pytest.fixture
def koala_provider(koala_mock: KoalaMock) -> MockedKoala:
    """The ``Koala`` provider, talking to ``koala_mock``."""
    return MockedKoala(koala_mock.api_endpoint)
