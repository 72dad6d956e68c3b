"""The live journal page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

Skipped, saying why, where no browser is installed (``.ci/run`` installs one). Waits are bounded
by a generous guard, never timed assertions.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser import headless_chromium

from koala import build_headers, build_payload, encode_payload
from mockserver import MockConfig
from mockserver.testing.embedded import KoalaMock

GUARD = 30.0
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def wait_for(check: Callable[[], Any], what: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        try:
            value = check()
        except StaleElementReferenceException:  # a row re-rendered while being read
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"the page never showed {what}")


def post(mock: KoalaMock, path: str, body: bytes, headers: dict[str, str]) -> int:
    """A raw POST (http.client sends any path and header value as given)."""
    connection = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=GUARD)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        with contextlib.suppress(http.client.HTTPException, ConnectionError):
            response.read()
        return response.status
    finally:
        connection.close()


def chat(mock: KoalaMock, content: str = "Hello", **extra: str) -> int:
    payload = build_payload("gpt-4o-mini", [{"role": "user", "content": content}])
    headers = {**build_headers(), "Content-Type": "application/json", **extra}
    return post(mock, "/api/gpt/", encode_payload(payload), headers)


def rows(driver: Any) -> list[Any]:
    return list(driver.find_elements("css selector", "tr.entry"))


def row_numbers(driver: Any) -> list[int]:
    return [int(r.get_attribute("data-number")) for r in rows(driver)]


@pytest.fixture
def mock() -> Iterator[KoalaMock]:
    with KoalaMock(MockConfig(cassette_dir=None)) as server:
        yield server


@pytest.fixture
def page(mock: KoalaMock) -> Iterator[Any]:
    with headless_chromium() as driver:
        driver.get(mock.url + "/__admin/ui")
        wait_for(lambda: driver.find_element("id", "connection").text == "live", "the live stream")
        yield driver


def test_rows_appear_as_requests_arrive(mock: KoalaMock, page: Any) -> None:
    assert rows(page) == []
    assert chat(mock, "Hello") == 200
    wait_for(lambda: row_numbers(page) == [1], "the first row")
    assert chat(mock, "Again", **{"X-Koala-Mock-Fault": "truncate;events=1"}) == 200
    wait_for(lambda: row_numbers(page) == [2, 1], "the second row, newest first")
    wait_for(lambda: "cut (FIN) by the fault" in rows(page)[0].text, "how the answer ended")
    text = rows(page)[0].text
    assert "POST /api/gpt/" in text and "truncate" in text and "fault" in text
    assert "ok" in rows(page)[1].text and "synthetic" in rows(page)[1].text
    rows(page)[1].click()  # opens to the full request and the events sent
    detail = wait_for(lambda: page.find_elements("css selector", "tr.detail"), "the detail")
    assert "Visitor-ID" in detail[0].text and '"input": "Hello"' in detail[0].text
    assert "Events sent" in detail[0].text


def test_the_page_loads_an_existing_journal_and_older_entries_on_demand(mock: KoalaMock) -> None:
    for _ in range(305):
        post(mock, "/not-here", b"", {})
    with headless_chromium() as driver:
        driver.get(mock.url + "/__admin/ui")
        wait_for(lambda: len(rows(driver)) == 300, "the newest 300 rows")
        assert row_numbers(driver)[0] == 305 and row_numbers(driver)[-1] == 6
        older = driver.find_element("id", "load-older")
        assert older.is_displayed()
        older.click()
        wait_for(lambda: len(rows(driver)) == 305, "the older rows")
        assert row_numbers(driver)[-1] == 1
        assert not driver.find_element("id", "load-older").is_displayed()


def test_actions_go_through_the_admin_api(mock: KoalaMock, page: Any) -> None:
    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "fault-name")).select_by_value("rate_limit")
    retry = page.find_element("css selector", "#fault-params input[name=retry_after]")
    retry.clear()
    retry.send_keys("7")
    times = page.find_element("id", "fault-times")
    times.clear()
    times.send_keys("2")
    page.find_element("id", "queue-fault").click()
    wait_for(
        lambda: "rate_limit;retry_after=7 ×2" in page.find_element("id", "queue").text,
        "the queued fault",
    )
    assert [(q["spec"], q["remaining"]) for q in mock.admin("GET", "/__admin/faults")["queue"]] == [
        ("rate_limit;retry_after=7", 2)
    ]
    assert chat(mock) == 429
    wait_for(lambda: "×1" in page.find_element("id", "queue").text, "one use of the fault")
    page.find_element("id", "reload-cassettes").click()
    wait_for(lambda: "reloaded" in page.find_element("id", "message").text, "the reload")
    page.find_element("id", "clear-journal").click()
    wait_for(lambda: rows(page) == [], "an empty journal")
    assert mock.requests == []


def test_nothing_a_request_carries_runs_in_the_page(mock: KoalaMock, page: Any) -> None:
    body = json.dumps(
        {"input": XSS, "inputHistory": [XSS], "outputHistory": [XSS], "model": XSS, XSS: XSS}
    ).encode()
    headers = {
        **build_headers(),
        "Content-Type": "application/json",
        "X-Payload": XSS,
        "User-Agent": XSS,
        "X-Koala-Mock-Fault": XSS,
    }
    post(mock, "/api/gpt/?" + XSS.replace(" ", "%20"), body, headers)  # a bad fault: a 400
    post(mock, "/" + XSS.replace(" ", "%20").replace("<", "%3C"), XSS.encode(), {"X-P": XSS})
    post(mock, "/api/gpt/", b"{" + XSS.encode(), {"Content-Type": "text/html"})
    wait_for(lambda: len(rows(page)) == 3, "the three hostile requests")
    for row in rows(page):
        row.click()
    wait_for(lambda: len(page.find_elements("css selector", "tr.detail")) == 3, "every detail")
    assert page.find_elements("css selector", "main img, main script, main iframe") == []
    assert page.find_elements("css selector", "[onerror], [onload], [onclick]") == []
    assert len(page.find_elements("tag name", "script")) == 1  # the page's own
    assert page.execute_script("return window.__pwned") is None
    assert XSS in page.find_element("id", "journal").text  # shown, as text


def test_the_page_takes_the_admin_token_from_its_fragment() -> None:
    token = "page-token-123"
    with (
        KoalaMock(MockConfig(cassette_dir=None, admin_token=token)) as mock,
        headless_chromium() as driver,
    ):
        driver.get(mock.url + "/__admin/ui#token=" + token)
        wait_for(lambda: driver.find_element("id", "connection").text == "live", "the stream")
        assert "token" not in driver.current_url  # taken out of the address bar
        assert chat(mock) == 200
        wait_for(lambda: row_numbers(driver) == [1], "the row")
        driver.find_element("id", "clear-journal").click()  # an action with the token
        wait_for(lambda: rows(driver) == [], "the cleared journal")
        assert driver.get_cookies() == []


def test_a_full_journal_shows_its_newest_rows_only(mock: KoalaMock) -> None:
    import asyncio

    from mockserver.server.state import JOURNAL

    assert mock.app is not None and mock._loop is not None
    journal = mock.app[JOURNAL]

    async def fill() -> None:  # on the server's loop: the journal is not thread-safe
        for number in range(journal.capacity):
            entry = journal.start("POST", f"/api/gpt/?n={number}", {"X-N": str(number)})
            entry.status = 200
            entry.finish("eof")

    asyncio.run_coroutine_threadsafe(fill(), mock._loop).result(GUARD)
    with headless_chromium() as driver:
        driver.get(mock.url + "/__admin/ui")
        wait_for(lambda: len(rows(driver)) == 300, "the newest 300 rows")
        numbers = row_numbers(driver)
        assert numbers == list(range(journal.capacity, journal.capacity - 300, -1))
        assert driver.find_element("id", "shown").text == f"showing 300 of {journal.capacity}"
        assert chat(mock) == 200  # a new one on top; the oldest shown leaves the page
        wait_for(lambda: row_numbers(driver)[0] == journal.capacity + 1, "the new row")
        assert len(rows(driver)) == 300


def test_the_page_reconnects_after_the_server_restarts() -> None:
    first = KoalaMock(MockConfig(cassette_dir=None)).start()
    port = first.port
    try:
        with headless_chromium() as driver:
            driver.get(first.url + "/__admin/ui")
            wait_for(lambda: driver.find_element("id", "connection").text == "live", "the stream")
            chat(first, "before")
            chat(first, "before")
            wait_for(lambda: row_numbers(driver) == [2, 1], "the first server's rows")
            first.stop()
            wait_for(lambda: driver.find_element("id", "connection").text != "live", "the loss")
            with KoalaMock(MockConfig(cassette_dir=None), port=port) as second:
                # A new run: the page drops the old rows and shows the new server's journal.
                wait_for(lambda: row_numbers(driver) == [], "the old rows dropped")
                chat(second, "after")
                wait_for(lambda: row_numbers(driver) == [1], "the new server's row")
                assert "5 chars" in rows(driver)[0].text  # "after", not "before" (6 chars)
    finally:
        first.stop()
