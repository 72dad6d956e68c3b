"""The clients the audit can score, and how one run of a client is carried out.

A client is a callable taking ``(api_endpoint, messages)`` and returning an async iterator, an
iterator, an awaitable, or text. ``--client`` names one: ``koala`` (the project's provider,
the default), ``g4f`` (the original gpt4free provider, see :mod:`mockserver.audit.g4f_client`)
or ``module:callable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import koala.errors
from koala import Koala
from koala.request import DEFAULT_MODEL
from mockserver.audit.classify import RunResult
from mockserver.wire.expectations import Limits

__all__ = [
    "CANCEL_GRACE",
    "Client",
    "ClientCall",
    "ClientSpecError",
    "Messages",
    "koala_client",
    "load_client",
    "load_exception_class",
    "run_client",
]

T = TypeVar("T")
Messages = Sequence[Mapping[str, Any]]
ClientCall = Callable[[str, Messages], Any]
#: How long a cancelled client may take to clean up before the audit moves on.
CANCEL_GRACE = 1.0


class ClientSpecError(ValueError):
    """A ``--client`` or ``--accept-error`` that cannot be loaded (the message says why)."""


@dataclass(frozen=True)
class Client:
    """A client under audit, and the exception classes it may raise for a documented error."""

    name: str
    call: ClientCall
    accepted: tuple[type[BaseException], ...] = field(default=())

    def accepts(self, exc: BaseException, documented: str) -> bool:
        """``exc`` counts as the documented error: the koala class, a class of that name
        (a foreign client's own ``RateLimitError``), or a class the user declared."""
        koala_class = getattr(koala.errors, documented, None)
        if isinstance(koala_class, type) and isinstance(exc, koala_class):
            return True
        if any(cls.__name__ == documented for cls in type(exc).__mro__):
            return True
        return isinstance(exc, self.accepted)


def koala_client(limits: Limits) -> Client:
    """The project's provider with ``limits``, and no bound on the whole call."""

    def call(api_endpoint: str, messages: Messages) -> Any:
        return Koala.create_async_generator(
            DEFAULT_MODEL,
            list(messages),
            api_endpoint=api_endpoint,
            timeout=None,
            read_timeout=limits.read_timeout,
            max_event_size=limits.max_event_size,
        )

    return Client("koala", call)


def load_client(spec: str, limits: Limits, accept: Sequence[str] = ()) -> Client:
    """The client ``spec`` names, accepting the ``module:Class`` errors in ``accept`` too.

    Only the project's provider is given ``limits``; another client has its own."""
    accepted = tuple(load_exception_class(text) for text in accept)
    if spec == "koala":
        client = koala_client(limits)
    elif spec == "g4f":
        from mockserver.audit.g4f_client import g4f_client

        client = g4f_client()
    else:
        client = Client(spec, _load_callable(spec))
    return Client(client.name, client.call, client.accepted + accepted)


def _load_object(spec: str, what: str) -> Any:
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ClientSpecError(f"{what} {spec!r}: expected module:name (e.g. mypkg.client:ask)")
    if os.getcwd() not in sys.path:  # as `python -m` would: modules of the current directory
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ClientSpecError(f"{what} {spec!r}: cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ClientSpecError(f"{what} {spec!r}: {module_name} has no {attribute!r}") from None
    return target


def _load_callable(spec: str) -> ClientCall:
    target = _load_object(spec, "--client")
    if not callable(target):
        raise ClientSpecError(f"--client {spec!r}: {type(target).__name__} is not callable")
    return target  # type: ignore[no-any-return]


def load_exception_class(spec: str) -> type[BaseException]:
    target = _load_object(spec, "--accept-error")
    if not (isinstance(target, type) and issubclass(target, BaseException)):
        raise ClientSpecError(f"--accept-error {spec!r}: not an exception class")
    return target


# -- one run ----------------------------------------------------------------------------------


async def run_client(
    client: Client, api_endpoint: str, messages: Messages, hang_after: float
) -> RunResult:
    """Call the client and read what it gives, for at most ``hang_after`` seconds."""
    values: list[Any] = []
    given_up = threading.Event()
    task = asyncio.ensure_future(_consume(client.call, api_endpoint, messages, values, given_up))
    done, _ = await asyncio.wait({task}, timeout=hang_after)
    if not done:
        given_up.set()  # a plain iterator in its thread stops at its next value
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
        return RunResult(list(values), hung=True)
    return RunResult(list(values), error=task.exception())


async def _consume(
    call: ClientCall, endpoint: str, messages: Messages, out: list[Any], given_up: threading.Event
) -> None:
    # Called in a thread: a sync client may do its I/O in the call itself.
    result = await _in_thread(lambda: call(endpoint, [dict(m) for m in messages]))
    while inspect.isawaitable(result):
        result = await result
    if isinstance(result, (str, bytes)):
        out.append(result)
    elif hasattr(result, "__aiter__"):
        iterator = result.__aiter__()
        try:
            async for value in iterator:
                out.append(value)
        finally:
            if hasattr(iterator, "aclose"):
                with contextlib.suppress(BaseException):
                    await iterator.aclose()
    elif hasattr(result, "__iter__"):
        await _in_thread(lambda: _drain(result, out, given_up))
    else:
        raise TypeError(
            f"the client returned {type(result).__name__}, not text, an iterator, an async "
            "iterator or an awaitable"
        )


def _drain(iterable: Any, out: list[Any], given_up: threading.Event) -> None:
    """Append each value as it comes, until the iterable ends or the run is given up."""
    iterator = iter(iterable)
    try:
        for value in iterator:
            if given_up.is_set():
                return
            out.append(value)
    finally:
        if given_up.is_set() and hasattr(iterator, "close"):
            with contextlib.suppress(Exception):
                iterator.close()


async def _in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a daemon thread: a client that never returns must not keep the audit
    (or the interpreter at exit) waiting, as a pool's worker thread would."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # the run was given up (a hang)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = work()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name="koala-audit-client", daemon=True).start()
    return await future
