"""The public names stay where users import them from, old paths included."""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from unittest import mock

import koala
import mockserver


def test_the_import_paths_of_earlier_releases_still_work() -> None:
    from mockserver import create_app
    from mockserver.embedded import KoalaMock as OldKoalaMock
    from mockserver.pytest_plugin import koala_mock as old_fixture
    from mockserver.strategies import message_lists as old_strategy
    from mockserver.testing import KoalaMock
    from mockserver.testing.pytest_plugin import koala_mock
    from mockserver.testing.strategies import message_lists

    assert create_app is mockserver.server.app.create_app
    assert OldKoalaMock is KoalaMock
    assert old_fixture is koala_mock
    assert old_strategy is message_lists


def test_the_console_script_and_the_pytest_plugin_are_registered() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "koala-mock"]
    # The standard-library-only launcher (it catches early signals), which runs mockserver.cli.
    launcher = importlib.import_module("koala_mock_launcher")
    assert script.value == "koala_mock_launcher:main", "stale install: rerun pip install -e ."
    assert script.load() is launcher.main
    cli = importlib.import_module("mockserver.cli")
    with mock.patch("sys.argv", ["koala-mock", "demo"]), mock.patch.object(cli, "main") as run:
        run.return_value = 7
        assert launcher.main() == 7
    run.assert_called_once_with()
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "koala_mock"]
    assert plugin.load() is importlib.import_module("mockserver.testing.pytest_plugin")


def test_every_name_in_an_all_list_exists() -> None:
    checked = 0
    for package in (koala, mockserver):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name in getattr(module, "__all__", ()):
                assert hasattr(module, name), f"{info.name}.__all__ names {name!r}"
                checked += 1
    assert checked > 50


def test_the_package_lists_its_late_names_too() -> None:
    # The fault registry's names are imported on first use (mockserver.__getattr__); dir()
    # and the public list still show them.
    listed = dir(mockserver)
    for name in ("FAULTS", "FaultScenario", "FaultSpec", "parse_fault_spec", "create_app"):
        assert name in listed
        assert name in mockserver.__all__
