"""Make docs/journal-ui.png: the live journal page after a few typical requests.

python docs/make_screenshot.py        (needs chromium, chromium-driver and selenium)
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import headless_chromium  # noqa: E402

from koala.request import build_headers, build_payload  # noqa: E402
from mockserver.testing.embedded import KoalaMock  # noqa: E402


def traffic(mock: KoalaMock) -> None:
    headers = build_headers()
    with httpx.Client(base_url=mock.url, trust_env=False) as client:

        def chat(messages: list[dict[str, str]], **extra: str) -> None:
            payload = build_payload("gpt-4o-mini", messages)  # type: ignore[arg-type]
            with contextlib.suppress(httpx.HTTPError):  # a fault may cut the answer short
                client.post("/api/gpt/", json=payload, headers={**headers, **extra})

        chat([{"role": "user", "content": "Hello"}])
        chat(
            [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "The capital of France is Paris."},
                {"role": "user", "content": "And of Spain?"},
            ]
        )
        chat([{"role": "user", "content": "Tell me a joke"}], **{"X-Koala-Mock-Seed": "42"})
        mock.fault("truncate", events=2)
        chat([{"role": "user", "content": "Count to ten"}])
        client.post("/api/gpt/", json={"input": "hi"})  # what a careless client sends
        chat([{"role": "user", "content": "Is there a Cloudflare challenge?"}])


def main() -> None:
    out = HERE / "journal-ui.png"
    with KoalaMock() as mock, headless_chromium(1400, 1000) as browser:
        browser.get(mock.url + "/__admin/ui")
        time.sleep(1.0)
        traffic(mock)
        time.sleep(1.0)
        rows = browser.find_elements("css selector", "tr.entry")
        rows[-1].click()  # the first request opens to its headers, body and events sent
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)
        browser.save_screenshot(str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
