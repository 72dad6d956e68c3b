"""pytest fixtures for the mock server, registered through the ``pytest11`` entry point.

Installing koala-harness is enough; no conftest needed:

- ``koala_mock``: a fresh in-process mock server on a free 127.0.0.1 port for each test
  (:class:`mockserver.testing.embedded.KoalaMock`: ``.api_endpoint``, ``.url``, ``.requests``,
  ``.fault(name, times=1, **params)``, ``.reset()``, ``.config``).
- ``koala_provider``: the ``Koala`` provider with ``api_endpoint`` preset to that server.
- ``koala_mock_config``: the ``MockConfig`` the server is made from: the defaults, except
  ``speed=0``, so recorded timing is not waited for (a test matching ``long_answer`` would
  otherwise take about 10 s). Override it in a conftest or test module to change the mode,
  cassettes, seed, faults... or to replay with the recorded timing (``speed=1``) in a timing test.
- ``--live`` and the ``live`` marker: tests marked ``@pytest.mark.live`` talk to the real
  koala.sh and are skipped unless pytest runs with ``--live``.

The server runs on an event loop of its own in a background thread, so the fixtures work in
sync tests and in async tests on any pytest-asyncio loop scope, and a test that blocks its own
loop cannot stall the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

__all__ = [
    "LIVE_OPTION",
    "MockedKoala",
    "koala_mock",
    "koala_mock_config",
    "koala_provider",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_recording_configure",
]

if TYPE_CHECKING:
    from mockserver.config import MockConfig
    from mockserver.testing.embedded import KoalaMock

LIVE_OPTION = "--live"
#: Tests replay as fast as possible (no waiting for recorded timing or latency).
TEST_SPEED = 0.0
_LIVE_HELP = "run tests marked 'live' (they talk to the real koala.sh service)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("koala-mock", "Koala mock server")
    group.addoption(LIVE_OPTION, action="store_true", default=False, help=_LIVE_HELP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: talks to the live koala.sh service; skipped unless --live is given"
    )


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
def koala_mock(koala_mock_config: MockConfig) -> Iterator[KoalaMock]:
    """A mock koala.sh server for this test, on a free loopback port."""
    from mockserver.testing.embedded import KoalaMock

    with KoalaMock(koala_mock_config, shutdown_timeout=0.5) as mock:
        yield mock


@pytest.fixture
def koala_provider(koala_mock: KoalaMock) -> MockedKoala:
    """The ``Koala`` provider, talking to ``koala_mock``."""
    return MockedKoala(koala_mock.api_endpoint)
