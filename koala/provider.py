"""The Koala provider: the thin I/O shell around :mod:`koala.request` and :mod:`koala.sse`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar, NamedTuple

import aiohttp
from aiohttp import BaseConnector, ClientResponse, ClientSession, ClientTimeout

from .api_key import API_KEY_ENV_VAR, ApiKey, resolve_api_key
from .base import AsyncGeneratorProvider, ProviderModelMixin
from .errors import (
    EventTooLargeError,
    InvalidOptionError,
    KoalaConnectionError,
    KoalaTimeoutError,
    MissingDependencyError,
    ModelNotSupportedError,
    UnexpectedContentTypeError,
    excerpt,
)
from .request import (
    API_ENDPOINT,
    DEFAULT_MODEL,
    OBSERVED_MODELS,
    SITE,
    build_headers,
    build_keyed_headers,
    build_keyed_payload,
    build_payload,
    is_visitor_id,
)
from .response import (
    EVENT_STREAM,
    JSON,
    body_ends_at_close,
    parse_media_type,
    status_error,
)
from .sse import DEFAULT_MAX_EVENT_SIZE, EventStreamDecoder
from .stream_end import CloseWatch

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ENDPOINT_ENV_VAR",
    "JSON_OUTPUT_REPLY",
    "READ_CHUNK_SIZE",
    "Koala",
    "check_options",
    "raise_for_status",
]

ENDPOINT_ENV_VAR = "KOALA_API_ENDPOINT"
DEFAULT_TIMEOUT = 300.0
DEFAULT_READ_TIMEOUT = 60.0
READ_CHUNK_SIZE = 65536
#: What a JSON answer must be (the words of its UnexpectedContentTypeError).
JSON_OUTPUT_REPLY = 'a JSON reply {"output": "<text>"}'


class Koala(AsyncGeneratorProvider, ProviderModelMixin):
    """Streams a chat answer from koala.sh (or a stand-in such as the mock server).

    The endpoint is, by precedence: the ``api_endpoint=`` keyword argument, the
    ``KOALA_API_ENDPOINT`` environment variable, the class attribute ``api_endpoint``.

    Two request shapes (docs/PROTOCOL.md): the browser shape of the original provider (the
    default), and the keyed API's when an API key is given (``api_key=`` or ``KOALA_API_KEY``).
    ``json_reply=True`` asks for the JSON reply ``{"output": ...}`` instead of the event stream.

    ``models`` lists the models seen in public clients (:attr:`models_are_observed`); the
    service's own list is not public, so any other model name is sent as given, as the
    original did.
    """

    url: ClassVar[str] = SITE
    api_endpoint: ClassVar[str] = API_ENDPOINT
    working: ClassVar[bool] = False
    supports_message_history: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    default_model: ClassVar[str] = DEFAULT_MODEL
    models: ClassVar[list[str]] = list(OBSERVED_MODELS)
    #: ``models`` is what public clients were seen to send, not a list the service publishes.
    models_are_observed: ClassVar[bool] = True
    model_aliases: ClassVar[dict[str, str]] = {"gpt-4o-mini-2024-07-18": DEFAULT_MODEL}

    @classmethod
    def get_model(cls, model: str | None) -> str:
        """The model to send: the default for ``None`` or ``""``, an alias resolved, else as given.

        An unknown name is no error (the service's list is not public, and the original sent
        any name); a model that is not a string is :class:`ModelNotSupportedError`.
        """
        if model is None or model == "":
            return cls.default_model
        if not isinstance(model, str):
            raise ModelNotSupportedError(
                model,
                cls.get_models(),
                f"model must be a string, got {type(model).__name__} {model!r}",
            )
        return cls.model_aliases.get(model, model)

    @classmethod
    def endpoint(cls, api_endpoint: str | None = None) -> str:
        """The endpoint a call goes to (see the class docstring for the precedence)."""
        return api_endpoint or os.environ.get(ENDPOINT_ENV_VAR) or cls.api_endpoint

    @classmethod
    async def create_async_generator(  # type: ignore[override]
        cls,
        model: str,
        messages: Any,
        proxy: str | None = None,
        connector: BaseConnector | None = None,
        *,
        api_endpoint: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        visitor_id: str | None = None,
        real_time_data: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        api_key: str | ApiKey | None = None,
        json_reply: bool = False,
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """Yield the answer's chunks (usually ``str``) as they arrive.

        ``timeout`` bounds the whole call and ``read_timeout`` the wait for each chunk, in seconds
        (``None`` for no limit); past either, :class:`KoalaTimeoutError`. Bad ``messages`` raise
        :class:`InvalidMessagesError` before any network I/O.

        ``api_key`` (else ``$KOALA_API_KEY``) sends the keyed shape, ``Authorization: Bearer``;
        the key appears in no error message and no repr. ``json_reply=True`` sends
        ``Accept: application/json``: the answer then arrives whole and is yielded once.
        """
        url = cls.endpoint(api_endpoint)
        check_options(url, timeout, read_timeout, visitor_id, real_time_data, max_event_size)
        if not isinstance(json_reply, bool):
            raise InvalidOptionError(f"json_reply must be True or False, got {json_reply!r}")
        key = resolve_api_key(api_key)
        if key is not None and visitor_id is not None:
            raise InvalidOptionError(
                "visitor_id belongs to the browser shape; the keyed shape (api_key= or "
                f"${API_KEY_ENV_VAR}) sends no Visitor-ID"
            )
        resolved_model = cls.get_model(model)
        if key is None:
            payload = build_payload(resolved_model, messages)
            headers = build_headers(visitor_id, real_time_data, json_reply)
        else:
            payload = build_keyed_payload(resolved_model, messages, real_time_data)
            headers = build_keyed_headers(key.bearer(), json_reply)
        client_timeout = ClientTimeout(total=timeout, sock_read=read_timeout)
        owns_connector = connector is None
        route = _route_for(connector, proxy)
        connector, proxy = route.connector, route.proxy
        try:
            async with (
                ClientSession(
                    headers=headers,
                    connector=connector,
                    connector_owner=owns_connector,
                    timeout=client_timeout,
                ) as session,
                session.post(url, json=payload, proxy=proxy) as response,
            ):
                await raise_for_status(response)
                async for chunk in await _answer_values(response, max_event_size, url, json_reply):
                    yield chunk
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise KoalaTimeoutError(
                f"no complete answer from {url} within the timeout "
                f"(total: {_seconds(timeout)}, between chunks: {_seconds(read_timeout)})"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise KoalaConnectionError(f"the stream from {url} broke off: {exc}") from exc
        except aiohttp.ClientProxyConnectionError as exc:
            raise KoalaConnectionError(f"could not reach the proxy {proxy}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise KoalaConnectionError(f"could not talk to {url}: {exc}") from exc
        except route.timeout_errors as exc:
            raise KoalaTimeoutError(f"the SOCKS proxy timed out: {exc}") from exc
        except route.connection_errors as exc:
            raise KoalaConnectionError(f"the SOCKS proxy failed: {exc}") from exc

    @staticmethod
    async def _parse_event_stream(
        response: ClientResponse, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> AsyncGenerator[Any, None]:
        """Yield the JSON value of each event in ``response``'s body (see :mod:`koala.sse`).

        A body that ends at the connection's close and was cut off (a reset, or a close in the
        middle of an event) raises ``aiohttp.ClientPayloadError``, as a cut body of known
        length does (:mod:`koala.stream_end`).
        """
        decoder = EventStreamDecoder(max_event_size=max_event_size)
        watch = CloseWatch(response) if body_ends_at_close(response.headers) else None
        async for chunk in response.content.iter_chunked(READ_CHUNK_SIZE):
            for value in decoder.feed(chunk):
                yield value
            if decoder.done:
                return
        cut = watch.cut(decoder) if watch is not None else None
        if cut is not None:
            raise aiohttp.ClientPayloadError(cut)
        for value in decoder.close():
            yield value


async def raise_for_status(response: ClientResponse) -> None:
    """Raise the typed error for a 4xx/5xx answer (classified by :mod:`koala.response`)."""
    if response.ok:  # below 400: aiohttp has followed any redirect already
        return
    error = status_error(response.status, response.headers, await _read_text(response))
    if error is not None:
        raise error


async def _answer_values(
    response: ClientResponse, max_event_size: int, url: str, json_reply: bool
) -> AsyncIterator[Any]:
    """The answer's values: an event stream, or the JSON ``{"output": ...}`` reply.

    A close-delimited JSON reply that does not parse because it was cut off (a reset, or a close
    inside the JSON text) is :class:`KoalaConnectionError`, as the same cut of a body of known
    length is; a whole reply that is not ``{"output": "..."}`` is
    :class:`UnexpectedContentTypeError`.
    """
    content_type = response.headers.get("Content-Type", "")
    media_type = parse_media_type(content_type)
    if media_type.is_event_stream:
        return Koala._parse_event_stream(response, max_event_size)
    watch = CloseWatch(response) if body_ends_at_close(response.headers) else None
    body = await _read_start(response, max_event_size + 1)
    if not media_type.is_json:
        expected = JSON if json_reply else EVENT_STREAM
        raise UnexpectedContentTypeError(content_type, body, expected)
    if len(body) > max_event_size:  # the whole reply is its one value: the same limit
        raise EventTooLargeError(
            f"the JSON reply is larger than max_event_size ({max_event_size} bytes)", 1, body
        )
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        cut = watch.json_cut(body) if watch is not None else None
        if cut is not None:
            raise KoalaConnectionError(
                f"the JSON reply from {url} broke off: {cut}; body starts: {excerpt(body)!r}"
            ) from None
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("output"), str):
        return _single(reply["output"])
    raise UnexpectedContentTypeError(content_type, body, JSON_OUTPUT_REPLY)


async def _single(value: Any) -> AsyncIterator[Any]:
    yield value


async def _read_start(response: ClientResponse, limit: int) -> bytes:
    """The body's first ``limit`` bytes (all of it when shorter)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        part = await response.content.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


async def _read_text(response: ClientResponse, limit: int = 65536) -> str:
    return (await _read_start(response, limit)).decode("utf-8", errors="replace")


def check_options(
    url: str,
    timeout: float | None,
    read_timeout: float | None,
    visitor_id: str | None,
    real_time_data: bool,
    max_event_size: int,
) -> None:
    """Raise :class:`InvalidOptionError` naming the first keyword argument that cannot work."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise InvalidOptionError(
            f"the endpoint must be an http:// or https:// URL, got {url!r} (from api_endpoint=, "
            f"${ENDPOINT_ENV_VAR} or Koala.api_endpoint, in that order)"
        )
    for name, value in (("timeout", timeout), ("read_timeout", read_timeout)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ):
            raise InvalidOptionError(
                f"{name} must be a number of seconds > 0 or None, got {value!r}"
            )
    if visitor_id is not None and not (isinstance(visitor_id, str) and is_visitor_id(visitor_id)):
        raise InvalidOptionError(
            f"visitor_id must be 20 characters from a-z and 0-9, got {visitor_id!r}"
        )
    if not isinstance(real_time_data, bool):
        raise InvalidOptionError(f"real_time_data must be True or False, got {real_time_data!r}")
    if (
        isinstance(max_event_size, bool)
        or not isinstance(max_event_size, int)
        or max_event_size < 1
    ):
        raise InvalidOptionError(f"max_event_size must be a positive int, got {max_event_size!r}")


class _Route(NamedTuple):
    """How a request reaches the endpoint, and the errors the route raises outside aiohttp's."""

    connector: BaseConnector | None
    proxy: str | None
    connection_errors: tuple[type[BaseException], ...] = ()
    timeout_errors: tuple[type[BaseException], ...] = ()


def _route_for(connector: BaseConnector | None, proxy: str | None) -> _Route:
    """aiohttp's ``proxy=`` for HTTP(S) proxies; an aiohttp-socks connector for SOCKS ones."""
    if not proxy or not proxy.lower().startswith("socks"):
        return _Route(connector, proxy)
    if connector is not None:
        raise InvalidOptionError("pass either a connector or a SOCKS proxy, not both")
    try:
        from aiohttp_socks import (
            ProxyConnectionError,
            ProxyConnector,
            ProxyError,
            ProxyTimeoutError,
        )
    except ImportError as exc:
        raise MissingDependencyError(
            f"the SOCKS proxy {excerpt(proxy, 40)!r} needs aiohttp-socks: "
            "pip install 'koala-harness[socks]'"
        ) from exc
    try:
        socks_connector = ProxyConnector.from_url(proxy)
    except ValueError as exc:
        raise InvalidOptionError(f"bad SOCKS proxy URL {excerpt(proxy, 40)!r}: {exc}") from None
    return _Route(socks_connector, None, (ProxyError, ProxyConnectionError), (ProxyTimeoutError,))


def _seconds(limit: float | None) -> str:
    """A timeout for a message: ``30 s``, or ``none`` when there is no limit."""
    return "none" if limit is None else f"{limit:g} s"
