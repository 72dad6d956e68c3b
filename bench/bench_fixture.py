"""Per-test cost of the pytest fixtures: koala_mock and koala_mock_session next to
pytest-httpserver's ``httpserver`` and a test with no server, in one pytest run.

    python bench/bench_fixture.py               # 200 tests per fixture, about 10 s
    python bench/bench_fixture.py --tests 500

Writes a test module to a temporary folder and runs it in a fresh pytest process (the plugins as
a user has them: koala-harness's from its entry point, pytest-httpserver's). Each test sends one
request to its server with the same plain urllib client and reads the whole answer:

- ``koala_mock``: a new mock server per test, the bundled cassettes, the provider's exact
  request for the ``greeting`` cassette (so the cassettes are loaded and matched); at the end the
  plugin's contract check reads the journal, then the server stops;
- ``koala_mock_session``: the session's server, reset before the test, the same request;
- ``httpserver``: pytest-httpserver's server (one per session, cleared after each test), with an
  ``expect_request(...).respond_with_data(...)`` answering the same event-stream bytes;
- ``no server``: the test body only (what pytest itself costs per test).

The test modules are interleaved (a, b, c, d, a, b, ...), so that load on the machine hits all
alike. Printed: per fixture, the median, p90 and mean of setup + call + teardown as pytest
reports them, and the first test's (which pays for the first cassette load or server start).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

KINDS = ("koala_mock", "koala_mock_session", "httpserver", "no_server")

TEST_MODULE = """
import urllib.request

from koala.request import build_headers, build_payload, encode_payload

HEADERS = {**build_headers("abcdefghij0123456789"), "Content-Type": "application/json"}
BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}]))
ANSWER = b'data: "Hello!"\\n\\ndata: " How"\\n\\ndata: " can"\\n\\ndata: " I"\\n\\n'
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url):
    request = urllib.request.Request(url, data=BODY, headers=HEADERS, method="POST")
    with OPENER.open(request) as response:
        assert response.status == 200
        return response.read()


def test_koala_mock_{n}(koala_mock):
    assert post(koala_mock.api_endpoint).startswith(b"data: ")


def test_koala_mock_session_{n}(koala_mock_session):
    assert post(koala_mock_session.api_endpoint).startswith(b"data: ")


def test_httpserver_{n}(httpserver):
    httpserver.expect_request("/api/gpt/", method="POST").respond_with_data(
        ANSWER, content_type="text/event-stream"
    )
    assert post(httpserver.url_for("/api/gpt/")).startswith(b"data: ")


def test_no_server_{n}():
    assert BODY
"""

COLLECTOR = """
import json, os

DURATIONS = {}


def pytest_runtest_logreport(report):
    DURATIONS[report.nodeid] = DURATIONS.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_FIXTURE_OUT"], "w") as handle:
        json.dump(DURATIONS, handle)
"""


def run(tests: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        module = "\n".join(
            textwrap.dedent(TEST_MODULE).replace("{n}", str(n)) if n == 0 else _tests_only(n)
            for n in range(tests)
        )
        (root / "test_bench.py").write_text(module, encoding="utf-8")
        (root / "bench_collector.py").write_text(COLLECTOR, encoding="utf-8")
        (root / "pytest.ini").write_text("[pytest]\naddopts = -p bench_collector\n")
        out = root / "durations.json"
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=root,
            env={**_environ(), "BENCH_FIXTURE_OUT": str(out), "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            sys.exit(f"the benchmark's pytest run failed:\n{completed.stdout[-3000:]}")
        durations: dict[str, float] = json.loads(out.read_text())
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for nodeid, seconds in durations.items():
        name = nodeid.rpartition("::")[2].removeprefix("test_").rpartition("_")[0]
        by_kind[name].append(seconds)
    return by_kind


def _tests_only(n: int) -> str:
    body = textwrap.dedent(TEST_MODULE)
    return body[body.index("def test_koala_mock_{n}") :].replace("{n}", str(n))


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "KOALA_API_ENDPOINT"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="tests per fixture (default 200)")
    args = parser.parse_args(argv)
    if args.tests < 2:
        parser.error("--tests must be at least 2")
    by_kind = run(args.tests)
    print(f"per-test cost (setup + call + teardown), {args.tests} tests each, one pytest run")
    print(f"{'fixture':<20} | {'median':>8} | {'p90':>8} | {'mean':>8} | {'first':>8}")
    for kind in KINDS:
        values = by_kind[kind]
        ordered = sorted(values[1:])
        p90 = ordered[int(len(ordered) * 0.9)]
        print(
            f"{kind:<20} | {_ms(statistics.median(ordered))} | {_ms(p90)} | "
            f"{_ms(statistics.fmean(ordered))} | {_ms(values[0])}"
        )
    mock = statistics.median(by_kind["koala_mock"][1:])
    base = statistics.median(by_kind["httpserver"][1:])
    print(f"koala_mock / httpserver (medians): {mock / base:.2f}; target: koala_mock <= 10 ms")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f}ms"


if __name__ == "__main__":
    main()
