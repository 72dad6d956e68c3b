"""``GET /__admin/ui``: the live journal page's files, served whole, self-contained and inert.

What the page does in a browser is tested in tests/integration/test_journal_ui_browser.py.
"""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, ClientFactory

from koala.sse import EventStreamDecoder
from mockserver import MockConfig, create_app
from mockserver.server.ui import CONTENT_SECURITY_POLICY, UI_FILES, UI_PATH, ui_file

ROOT = Path(__file__).resolve().parents[2]
VOID = {"meta", "link", "input", "br", "img", "hr", "source", "wbr", "area", "base", "col"}


class PageParser(HTMLParser):
    """Collects ids, the URLs the page loads, and any tag left open or closed twice."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.open: list[str] = []
        self.problems: list[str] = []
        self.inline_handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for name in ("src", "href", "action"):
            if values.get(name):
                self.urls.append(str(values[name]))
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script" and "src" not in values:
            self.problems.append("inline <script> (the CSP would block it)")
        if tag == "style":
            self.problems.append("inline <style> (the CSP would block it)")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> does not close the open {self.open[-1:]}")
            return
        self.open.pop()


def parsed_page() -> PageParser:
    parser = PageParser()
    parser.feed(ui_file("index.html").decode("utf-8"))
    parser.close()
    return parser


async def test_the_page_is_served_with_a_strict_policy(client: Client) -> None:
    async with client.get(UI_PATH) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == ui_file("index.html")
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_the_page_is_well_formed_html() -> None:
    page = parsed_page()
    assert page.problems == []
    assert page.open == []
    assert page.inline_handlers == []
    assert ui_file("index.html").startswith(b"<!DOCTYPE html>")


async def test_every_file_the_page_loads_is_served_from_the_mock(client: Client) -> None:
    # data:, for the icon: no /favicon.ico request, which the journal would show as a 404.
    urls = [url for url in parsed_page().urls if url != "data:,"]
    assert sorted(urls) == sorted(f"{UI_PATH}/{name}" for name in UI_FILES if name != "index.html")
    for url in urls:
        async with client.get(url) as response:
            assert response.status == 200, url
            name = url.rsplit("/", 1)[1]
            assert response.headers["Content-Type"] == UI_FILES[name]
            assert await response.read() == ui_file(name)
    async with client.get(f"{UI_PATH}/../health") as response:
        assert response.status in (200, 404)  # normalised by the router, never a file read
    async with client.get(f"{UI_PATH}/pyproject.toml") as response:
        assert response.status == 404


@pytest.mark.parametrize("name", sorted(UI_FILES))
def test_no_file_names_another_site(name: str) -> None:
    text = ui_file(name).decode("utf-8")
    assert not re.search(r"(?i)\b(?:https?:|wss?:|ftp:)?//[a-z0-9.-]+\.[a-z]", text), name
    assert "@import" not in text and "url(" not in text


def test_the_script_never_turns_values_into_markup() -> None:
    script = ui_file("journal.js").decode("utf-8")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("on',
        "srcdoc",
        "javascript:",
    ):
        assert sink not in script, sink


def test_every_element_the_script_uses_is_on_the_page() -> None:
    script = ui_file("journal.js").decode("utf-8")
    used = set(re.findall(r'byId\("([^"]+)"\)', script))
    assert used and used <= parsed_page().ids, used - parsed_page().ids


def test_the_script_parses() -> None:
    node = next((p for p in ("/usr/bin/node", "/usr/local/bin/node") if Path(p).exists()), None)
    if node is None:
        pytest.skip("no node to syntax-check the script with (the browser test runs it)")
    path = files("mockserver.server").joinpath("ui", "journal.js")
    result = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_files_are_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["mockserver.server"]
    for name in UI_FILES:
        assert any(Path("ui", name).match(pattern) for pattern in patterns), name
        assert (ROOT / "mockserver" / "server" / "ui" / name).is_file()


async def test_with_an_admin_token_the_page_loads_but_its_data_needs_the_token(
    aiohttp_client: ClientFactory,
) -> None:
    token = "s3cret-token"
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=None, admin_token=token)))
    for url in [UI_PATH] + [f"{UI_PATH}/{name}" for name in UI_FILES if name != "index.html"]:
        async with client.get(url) as response:
            assert response.status == 200, url  # static files, no data: no token needed
        async with client.get(url, headers={"Host": "evil.example:80"}) as response:
            assert response.status == 403, url  # the Host check still holds
        async with client.get(url, headers={"Origin": "http://evil.example"}) as response:
            assert response.status == 403, url
    for data in ("/__admin/events", "/__admin/requests", "/__admin/faults"):
        async with client.get(data) as response:
            assert response.status == 401, data
    bearer = {"Authorization": f"Bearer {token}"}
    async with client.get("/__admin/events", headers=bearer) as response:
        assert response.status == 200
        decoder = EventStreamDecoder()
        values: list[Any] = []
        while not values:
            values = decoder.feed(await response.content.readany())
        assert values[0]["type"] == "hello"
    script = ui_file("journal.js").decode("utf-8")
    assert '"Bearer " + token' in script and "document.cookie" not in script


async def test_the_page_is_refused_to_a_foreign_host(client: Client) -> None:
    async with client.get(UI_PATH, headers={"Host": "rebound.example:80"}) as response:
        assert response.status == 403
