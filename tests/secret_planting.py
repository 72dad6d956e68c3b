"""Plant secrets under random names and count how many reach what a recording writes.

The names (headers, cookies, query parameters) and the values are drawn from a seeded generator,
so no list in the code can mention them: a scrubber passes only if it keeps what it knows to be
safe (an allowlist) and replaces every echo of what it removed. A hostile local upstream echoes
every credential it was sent, in its body and in answer headers, and adds credentials of its own
(cookies, URL-valued headers with tokens, headers with random names).

Run ``python tests/secret_planting.py`` to print the leaked fraction through ``koala-mock record``
and through the recording proxy (it works on older trees too: it uses only the CLI and
``create_app(MockConfig(record_upstream=...))``).
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

_ALNUM = string.ascii_letters + string.digits


@dataclass
class Plant:
    """Random names and secret values, and every secret planted so far (``planted``)."""

    rng: random.Random
    planted: dict[str, str] = field(default_factory=dict)

    def name(self, size: int = 7) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase) for _ in range(size))

    def header(self) -> str:
        return "X-" + self.name().capitalize()

    def secret(self, where: str) -> str:
        value = "".join(self.rng.choice(_ALNUM) for _ in range(28))
        self.planted[where] = value
        return value


def hostile_upstream(plant: Plant) -> web.Application:
    """An upstream that echoes every request header, the URL and the body in its event stream
    and in its answer headers, and sends credentials of its own under random names."""
    answer_headers: list[tuple[str, str]] = [("Content-Type", "text/event-stream")]
    for _ in range(6):
        name = plant.header()
        answer_headers.append((name, plant.secret(f"answer header {name}")))
    cookie = plant.name()
    answer_headers.append(
        ("Set-Cookie", f"{cookie}={plant.secret(f'answer cookie {cookie}')}; Path=/; HttpOnly")
    )
    q1, q2 = plant.name(5), plant.name(5)
    user, password = plant.secret("Location user"), plant.secret("Location password")
    answer_headers.append(
        (
            "Location",
            f"https://{user}:{password}@127.0.0.1:1/next?{q1}={plant.secret(f'Location ?{q1}')}"
            f"&{q2}={plant.secret(f'Location ?{q2}')}",
        )
    )
    q3 = plant.name(5)
    answer_headers.append(
        ("Link", f'<https://127.0.0.1:1/more?{q3}={plant.secret(f"Link ?{q3}")}>; rel="next"')
    )

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = [[name, value] for name, value in request.headers.items()]
        echo_name = plant.header()
        headers = [
            *answer_headers,
            # Echoes of what the client sent, in a header dropped and in one kept.
            (echo_name, " ".join(value for _, value in received)),
            ("Cache-Control", "no-cache, x=" + " ".join(v for _, v in received)),
        ]
        response = web.StreamResponse(headers=CIMultiDict(headers))
        await response.prepare(request)
        for value in (received, request.path_qs, body.decode("utf-8", "replace")):
            await response.write(b"data: " + json.dumps(json.dumps(value)).encode() + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def leaks(plant: Plant, texts: list[bytes]) -> list[str]:
    """Where each secret that appears in ``texts`` was planted."""
    blob = b"\n".join(texts)
    return sorted(where for where, value in plant.planted.items() if value.encode() in blob)


def files_in(directory: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()]


def upstream_url(plant: Plant, server: TestServer, *, user_info: bool = True) -> str:
    """The upstream's URL with user-info and two query parameters, all secret."""
    q1, q2 = plant.name(5), plant.name(5)
    auth = (
        f"{plant.secret('upstream user')}:{plant.secret('upstream password')}@" if user_info else ""
    )
    return (
        f"http://{auth}127.0.0.1:{server.port}/api/gpt/"
        f"?{q1}={plant.secret(f'upstream ?{q1}')}&{q2}={plant.secret(f'upstream ?{q2}')}"
    )


def client_request(plant: Plant, *, keyed: bool) -> tuple[list[tuple[str, str]], str]:
    """A client's headers (random names, cookies; the keyed API's Bearer) and query string."""
    headers = [("Content-Type", "application/json")]
    for _ in range(6):
        name = plant.header()
        headers.append((name, plant.secret(f"request header {name}")))
    cookies = "; ".join(f"{n}={plant.secret(f'request cookie {n}')}" for n in plant_names(plant))
    headers.append(("Cookie", cookies))
    if keyed:
        headers.append(("Authorization", f"Bearer {plant.secret('keyed Authorization')}"))
    else:
        headers.append(("Visitor-ID", "".join(plant.rng.choice("abcdefghij") for _ in range(20))))
    query = "&".join(f"{n}={plant.secret(f'request ?{n}')}" for n in plant_names(plant, 5, 3))
    return headers, query


def plant_names(plant: Plant, size: int = 6, count: int = 3) -> list[str]:
    return [plant.name(size) for _ in range(count)]


BODY = b'{"input": "Hello", "inputHistory": [], "outputHistory": [], "model": "gpt-4o-mini"}'


async def through_the_proxy(seed: int, record_dir: Path) -> tuple[Plant, list[str], list[bytes]]:
    """Two proxied requests (browser shape with an upstream user-info; keyed shape), and what
    the record directory and the journal hold afterwards."""
    from mockserver.config import MockConfig
    from mockserver.server.app import create_app

    plant = Plant(random.Random(seed))
    texts: list[bytes] = []
    async with TestServer(hostile_upstream(plant), host="127.0.0.1") as upstream:
        for keyed in (False, True):
            url = upstream_url(plant, upstream, user_info=not keyed)
            directory = record_dir / ("keyed" if keyed else "browser")
            config = MockConfig(cassette_dir=None, record_upstream=url, record_dir=directory)
            async with TestServer(create_app(config), host="127.0.0.1") as proxy:
                headers, query = client_request(plant, keyed=keyed)
                async with aiohttp.ClientSession() as session:
                    target = f"{proxy.make_url('/api/gpt/')}?{query}"
                    async with session.post(target, data=BODY, headers=headers) as response:
                        await response.read()
                    journal = f"http://127.0.0.1:{proxy.port}/__admin/requests"
                    async with session.get(journal) as response:
                        texts.append(await response.read())
            for _ in range(200):  # the proxy saves just after the stream ends
                if list(directory.glob("*.yaml")):
                    break
                await asyncio.sleep(0.02)
    texts.extend(files_in(record_dir))
    return plant, leaks(plant, texts), texts


def through_record(seed: int, out_dir: Path) -> tuple[Plant, list[str]]:
    """``koala-mock record`` from the hostile upstream (run in a thread of its own loop): the
    cassette and everything the command printed."""
    import contextlib
    import io
    import threading

    from mockserver.cli.main import main as cli_main

    plant = Plant(random.Random(seed))
    ready: list[str] = []
    stop = threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        async with TestServer(hostile_upstream(plant), host="127.0.0.1") as upstream:
            ready.append(upstream_url(plant, upstream))
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    while not ready:
        threading.Event().wait(0.01)
    out = out_dir / "hostile.yaml"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            cli_main(["record", "--out", str(out), "--prompt", "Hello", "--upstream", ready[0]])
    finally:
        stop.set()
        thread.join(10)
        loop.close()
    texts = [*files_in(out_dir), printed.getvalue().encode()]
    return plant, leaks(plant, texts)


def main() -> int:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    with tempfile.TemporaryDirectory() as temp:
        plant, leaked, _ = asyncio.run(through_the_proxy(seed, Path(temp) / "proxy"))
        print(f"recording proxy: {len(leaked)} of {len(plant.planted)} planted secrets leaked")
        for where in leaked:
            print(f"  - {where}")
        (Path(temp) / "record").mkdir()
        plant, leaked = through_record(seed, Path(temp) / "record")
        print(f"koala-mock record: {len(leaked)} of {len(plant.planted)} planted secrets leaked")
        for where in leaked:
            print(f"  - {where}")
    return 0


if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path, and its koala/ (the tests) would hide
    # the koala package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.exit(main())


__all__: list[Any] = ["Plant", "hostile_upstream", "leaks", "through_record", "through_the_proxy"]
