"""Running a user's test folder in a fresh pytest (pytester), as someone who installed the
project would: the plugin from its entry point, no conftest, asyncio in strict mode."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

_REGISTERED = any(
    ep.value == "mockserver.testing.pytest_plugin" for ep in entry_points(group="pytest11")
)
# Installed (pip install -e .), pytest loads the plugin from its entry point; otherwise load it
# by name so the tests still check the fixtures themselves.
PLUGIN_ARGS = () if _REGISTERED else ("-p", "mockserver.testing.pytest_plugin")

PYTEST_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def run_subprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A fresh pytest process: what a user who installed the project gets."""
    pytester.makeini(PYTEST_INI)
    return pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args)


def run_inline(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The same, in this process (faster; for tests without async code)."""
    pytester.makeini(PYTEST_INI)
    return pytester.runpytest_inprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's name and how it ended: ``passed``, ``failed`` (in the test or after it, by
    the contract check), ``error`` (in a fixture), ``skipped``. In-process runs only."""
    ended: dict[str, str] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        name = report.nodeid.rpartition("::")[2]
        if report.when == "call":
            ended[name] = report.outcome
        elif report.outcome == "failed":
            ended[name] = "error"
        elif report.outcome == "skipped":
            ended.setdefault(name, "skipped")
    return ended
