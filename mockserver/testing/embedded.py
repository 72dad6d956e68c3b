"""Run the mock server inside another program: on the caller's event loop or in a thread.

``start_server`` serves an app on the running loop (the CLI and the demo use it).
``KoalaMock`` runs the server on an event loop of its own in a daemon thread, so sync code, and
async code on any loop (whatever pytest-asyncio's loop scope), can talk to it; it drives the
server only through the documented admin HTTP API.

>>> from mockserver.testing.embedded import KoalaMock
>>> with KoalaMock() as mock:  # doctest: +SKIP
...     mock.fault("rate_limit")
...     Koala.create_async("gpt-4o-mini", messages, api_endpoint=mock.api_endpoint)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import threading
import urllib.error
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from koala.request import API_PATH
from mockserver.errors import MockServerError
from mockserver.testing.verification import (
    HeaderMatch,
    RequestList,
    assert_requested,
    contract_failures,
)

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "ContractViolation",
    "KoalaMock",
    "MockAdminError",
    "ServerAddress",
    "is_loopback",
    "journal_entries",
    "start_server",
]

if TYPE_CHECKING:
    from aiohttp.abc import AbstractAccessLogger

    from mockserver.config import MockConfig

#: How long shutdown waits for open streams before it closes them.
DEFAULT_SHUTDOWN_TIMEOUT = 1.0
_THREAD_START_TIMEOUT = 30.0
# The admin API is on loopback: never route it through an HTTP(S)_PROXY from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockAdminError(MockServerError, RuntimeError):
    """The mock server's admin API refused a call (the message carries its JSON error)."""


class ContractViolation(MockServerError, AssertionError):
    """Requests the server saw broke the Koala API contract (the message lists them)."""


class ServerAddress(NamedTuple):
    """Where a server listens (a named tuple: cheaper than a frozen dataclass to define at
    import, which ``koala-mock serve`` does before its first answer)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_endpoint(self) -> str:
        """The URL to give ``Koala`` (``api_endpoint=`` or ``KOALA_API_ENDPOINT``)."""
        return self.url + API_PATH


def journal_entries(answer: Any) -> list[dict[str, Any]]:
    """The entries in a ``GET /__admin/requests`` answer (``{"count": n, "requests": [...]}``)."""
    entries = answer.get("requests") if isinstance(answer, dict) else answer
    if not isinstance(entries, list):
        raise MockAdminError(f"GET /__admin/requests answered {answer!r:.200}, not a journal")
    return entries


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: addresses other machines cannot reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def start_server(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    access_log_class: type[AbstractAccessLogger] | None = None,
) -> tuple[web.AppRunner, ServerAddress]:
    """Serve ``app`` on the running loop; port 0 picks a free port. Stop with ``runner.cleanup()``.

    Raises ``OSError`` when the address cannot be bound (errno ``EADDRINUSE`` when it is taken).
    """
    runner_options: dict[str, Any] = {"shutdown_timeout": shutdown_timeout}
    if access_log_class is None:
        runner_options["access_log"] = None
    else:
        runner_options["access_log_class"] = access_log_class
    runner = web.AppRunner(app, handle_signals=False, **runner_options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, ServerAddress(host, _bound_port(runner, port))


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


class KoalaMock:
    """The mock server in a background thread, plus a small client for its admin API.

    ``api_endpoint`` is what ``Koala`` needs; ``requests`` is the journal (``.matching(...)``
    filters it, ``assert_requested(...)`` checks it); ``fault(...)`` queues a fault for the next
    requests; ``respond_with(...)`` adds a stub; ``check_contract()`` raises
    :class:`ContractViolation` for requests that broke the contract; ``reset()`` clears the
    journal, faults and stubs. Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        from mockserver.config import MockConfig

        self.config = config if config is not None else MockConfig()
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._address: ServerAddress | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.app: web.Application | None = None
        #: Header and body warnings fail :meth:`check_contract` too (``config.strict`` or the
        #: ``koala_mock(strict=True)`` marker).
        self.strict_contract = self.config.strict
        self._contract_errors_allowed = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> KoalaMock:
        if self._thread is not None:
            raise RuntimeError("this KoalaMock is already started")
        self._thread = threading.Thread(target=self._run, name="koala-mock-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_THREAD_START_TIMEOUT):
            raise RuntimeError("the mock server thread did not start")
        if self._startup_error is not None:
            error, self._startup_error = self._startup_error, None
            self._thread.join()
            self._thread = self._loop = None
            self._ready.clear()
            raise error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            with contextlib.suppress(Exception):
                future.result(self._shutdown_timeout + 10.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._runner = self._loop = self._address = None
        self._ready.clear()

    def __enter__(self) -> KoalaMock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._start_on_loop())
            except BaseException as exc:
                self._startup_error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_on_loop(self) -> None:
        from mockserver.server.app import create_app

        self.app = create_app(self.config)
        self._runner, self._address = await start_server(
            self.app, self._host, self._port, shutdown_timeout=self._shutdown_timeout
        )

    # -- where it is ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._address is not None

    @property
    def address(self) -> ServerAddress:
        if self._address is None:
            raise RuntimeError("the mock server is not running: call start() first")
        return self._address

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.address.url

    @property
    def api_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/api/gpt/``: pass it to ``Koala`` as ``api_endpoint=``."""
        return self.address.api_endpoint

    @property
    def port(self) -> int:
        return self.address.port

    # -- admin API ------------------------------------------------------------------------------

    @property
    def requests(self) -> RequestList:
        """The journal: one dict per request the server saw, oldest first.

        ``requests.matching(input=..., model=..., header=(name, value))`` keeps the chat API
        requests whose body fields and headers are equal to those given.
        """
        return RequestList(journal_entries(self.admin("GET", "/__admin/requests")))

    def assert_requested(
        self, times: int | None = None, header: HeaderMatch = None, **fields: Any
    ) -> RequestList:
        """The chat API requests matching ``fields`` and ``header``; ``AssertionError`` unless
        there are exactly ``times`` (``None``: at least one), showing the nearest request and
        how it differs."""
        __tracebackhide__ = True
        return assert_requested(self.requests, times, header, **fields)

    def fault(self, name: str, times: int = 1, **params: Any) -> None:
        """Answer the next ``times`` requests with the fault ``name`` (``params`` tune it)."""
        self.admin("POST", "/__admin/faults", {"fault": name, "times": times, "params": params})

    def respond_with(
        self,
        tokens: list[Any] | None = None,
        *,
        text: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        fault: str | None = None,
        when: dict[str, Any] | None = None,
        times: int | None = None,
    ) -> dict[str, Any]:
        """Answer matching requests with this, before any cassette (first added, first tried).

        ``tokens`` (a list of JSON values, one event each) or ``text`` (one event; the body of
        a non-2xx ``status``); ``headers`` are added to the answer; ``fault`` (``"NAME;k=v"``)
        breaks it; ``when`` holds body fields a request must have (``{"input": "Hello"}``);
        ``times`` uses the stub up after that many requests (``None``: never). Returns the stub
        as the server holds it. A bad value raises :class:`MockAdminError` naming it.
        """
        stub: dict[str, Any] = {"status": status}
        for key, value in (
            ("tokens", tokens),
            ("text", text),
            ("headers", headers),
            ("fault", fault),
            ("when", when),
            ("times", times),
        ):
            if value is not None:
                stub[key] = value
        answer = self.admin("POST", "/__admin/stubs", stub)
        result: dict[str, Any] = answer["stub"]
        return result

    def clear_stubs(self) -> None:
        self.admin("DELETE", "/__admin/stubs")

    def reset(self) -> None:
        """Forget the journal, the queued faults and the stubs."""
        self.admin("POST", "/__admin/reset", {})

    # -- the contract ---------------------------------------------------------------------------

    def allow_contract_errors(self, allowed: bool = True) -> None:
        """This test sends bad requests on purpose: :meth:`check_contract` lets them pass (they
        are still in :attr:`requests`, with their verdicts)."""
        self._contract_errors_allowed = allowed

    def begin_test(self, *, strict: bool | None = None, allow_errors: bool = False) -> None:
        """The contract policy for the next test (the pytest plugin calls this)."""
        self.strict_contract = self.config.strict if strict is None else strict
        self._contract_errors_allowed = allow_errors

    def contract_failures(self) -> list[str]:
        """The requests that broke the contract (see :meth:`check_contract`), one block each;
        empty when there are none or they are allowed."""
        if self._contract_errors_allowed:
            return []
        return contract_failures(self.requests, strict=self.strict_contract)

    def check_contract(self) -> None:
        """Raise :class:`ContractViolation` naming each request that got a contract error (with
        ``strict_contract``: a header or body warning too) or, in replay mode, matched no
        cassette; unless :meth:`allow_contract_errors` was called."""
        __tracebackhide__ = True
        failures = self.contract_failures()
        if failures:
            raise ContractViolation(contract_message(failures, self.strict_contract))

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API: JSON in, JSON out; ``MockAdminError`` on a non-2xx answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None or method not in ("GET", "HEAD"):
            request.add_header("Content-Type", "application/json")
        if self.config.admin_token is not None:
            request.add_header("Authorization", f"Bearer {self.config.admin_token}")
        try:
            with _DIRECT.open(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:500]
            raise MockAdminError(f"{method} {path} answered {exc.code}: {detail}") from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise MockAdminError(
                f"{method} {path} answered something that is not JSON: {payload[:200]!r}"
            ) from None


def contract_message(failures: list[str], strict: bool) -> str:
    count = len(failures)
    what = "broke the Koala API contract" + (" (strict: warnings count)" if strict else "")
    return "\n".join(
        [
            f"koala_mock: {count} request{'' if count == 1 else 's'} {what}:",
            *failures,
            "If the test sends bad requests on purpose, call koala_mock.allow_contract_errors() "
            "or mark it @pytest.mark.koala_mock(allow_contract_errors=True).",
        ]
    )
