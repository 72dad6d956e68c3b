"""A headless Chromium for the live page's tests (Debian's ``chromium`` and ``chromium-driver``).

:func:`headless_chromium` skips the test, saying why, when selenium, the browser or its driver is
missing (``.ci/run`` installs them). Also used by ``docs/make_screenshot.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Where Debian puts the browser and its WebDriver; $CHROMIUM / $CHROMEDRIVER override.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests run as root in CI, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = os.environ.get("CHROMIUM") or next(
        (found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None
    )
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if browser is None:
        return "no chromium on PATH (apt-get install chromium chromium-driver)"
    if driver is None:
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return browser, driver


@contextmanager
def headless_chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A selenium WebDriver on a headless Chromium with a fresh profile, quit afterwards."""
    found = find_browser()
    if isinstance(found, str):
        import pytest

        pytest.skip(f"no headless browser: {found}")
    browser, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="koala-mock-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
