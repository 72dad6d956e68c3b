"""The bundled cassettes: found in a source checkout and in a plain (non-editable) install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mockserver.cli.main import _config_from_args, build_parser
from mockserver.config import (
    CASSETTES_ENV_VAR,
    DEFAULT_CASSETTE_DIR,
    SOURCE_CASSETTE_DIR,
    bundled_cassette_dir,
    default_cassette_dir,
)

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_own_cassettes_dir() -> None:
    assert DEFAULT_CASSETTE_DIR == SOURCE_CASSETTE_DIR == REPO / "cassettes"


def test_an_installed_package_uses_its_package_data(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "mockserver" / "bundled_cassettes").mkdir(parents=True)
    (site / "cassettes").mkdir()  # some other distribution's top-level folder: not ours
    assert bundled_cassette_dir(site / "mockserver") == site / "mockserver" / "bundled_cassettes"


def test_a_checkout_layout_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "mockserver").mkdir()
    (tmp_path / "cassettes").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    assert bundled_cassette_dir(tmp_path / "mockserver") == tmp_path / "cassettes"


def test_the_environment_overrides_the_bundled_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CASSETTES_ENV_VAR, "/tmp/elsewhere")
    assert default_cassette_dir() == Path("/tmp/elsewhere")
    monkeypatch.delenv(CASSETTES_ENV_VAR)
    assert default_cassette_dir() == DEFAULT_CASSETTE_DIR


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_pyproject_ships_every_cassette_as_package_data() -> None:
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package = "mockserver.bundled_cassettes"
    assert package in setuptools["packages"]
    assert setuptools["package-dir"][package] == "cassettes"
    patterns = setuptools["package-data"][package]
    shipped = {p.name for pattern in patterns for p in (REPO / "cassettes").glob(pattern)}
    assert shipped == {p.name for p in (REPO / "cassettes").iterdir() if p.is_file()}
    assert "README.md" in shipped and "greeting.yaml" in shipped


def test_serve_record_defaults_to_cassettes_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config_from_args(build_parser().parse_args(["serve", "--record"]))
    assert config.record_dir == tmp_path / "cassettes"
    assert (tmp_path / "cassettes").is_dir()


def test_serve_help_names_the_default_record_dir(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "./cassettes in the current directory" in " ".join(capsys.readouterr().out.split())
