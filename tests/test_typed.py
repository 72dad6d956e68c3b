"""PEP 561: ``koala`` and ``mockserver`` say they are typed, and the marker ships in a wheel."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["koala", "mockserver"])
def test_package_has_py_typed(package: str) -> None:
    assert files(package).joinpath("py.typed").is_file()


@pytest.mark.parametrize("package", ["koala", "mockserver"])
def test_py_typed_is_package_data(package: str) -> None:
    tomllib = pytest.importorskip("tomllib")
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in settings["tool"]["setuptools"]["package-data"][package]
