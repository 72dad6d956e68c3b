"""Helpers to test code that uses the Koala provider offline, with vcrpy cassettes.

>>> from koala.testing import koala_vcr
>>> my_vcr = koala_vcr()                                 # the bundled cassettes  # doctest: +SKIP
>>> with my_vcr.use_cassette("greeting.yaml"):           # doctest: +SKIP
...     answer = await Koala.create_async("gpt-4o-mini", [{"role": "user", "content": "Hello"}])

With pytest-recording, return :func:`vcr_config` from its ``vcr_config`` fixture (the mock
server's pytest plugin registers the ``json_body`` matcher on pytest-recording's VCR).

Matching is on the method, the URL path and the JSON body's meaning (key order and spacing do not
matter); headers are ignored, since the provider sends a new Visitor-ID on every call. Cassettes
are never written unless asked (``record_mode="none"``), and anything that is recorded goes
through the same scrubbing as ``koala-mock record``.

The scrubbing rules live here (pure, no I/O) because this package must not import the mock
server; :mod:`mockserver.cassettes.scrub` applies them to whole cassettes.
vcrpy is imported lazily: it is only needed by :func:`koala_vcr`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import MissingDependencyError

__all__ = [
    "SCRUBBED",
    "VISITOR_ID_PLACEHOLDER",
    "before_record_request",
    "before_record_response",
    "bundled_cassette_dir",
    "is_sensitive_name",
    "json_body_matcher",
    "koala_vcr",
    "matching_form",
    "register_matchers",
    "scrub_cookie_header",
    "scrub_header_value",
    "scrub_headers",
    "scrub_set_cookie_header",
    "scrub_uri",
    "vcr_config",
]

#: What replaces a secret: a header value, a cookie value, a query parameter value.
SCRUBBED = "SCRUBBED"
#: A fixed Visitor-ID of the real one's shape (20 characters from a-z0-9), so replay still works.
VISITOR_ID_PLACEHOLDER = "0000000000visitor000"

# A name that looks like it carries a credential: Authorization, X-Api-Key, X-Session-Token,
# api_key, access_token, client_secret, csrftoken, cf_clearance, password...
_SENSITIVE_NAME = re.compile(
    r"auth|token|key|secret|session|passw|pwd|csrf|xsrf|cookie|credential|signature|cf_clearance",
    re.IGNORECASE,
)
_COOKIE_ATTRIBUTES = {"path", "domain", "expires", "max-age", "secure", "httponly", "samesite"}
_VISITOR_HEADER = "visitor-id"
_MATCHER_NAME = "json_body"
#: The folder holding the ``koala`` and ``mockserver`` packages (they ship together).
_INSTALL_ROOT = Path(__file__).resolve().parents[1]


def is_sensitive_name(name: str) -> bool:
    """True for a header, cookie or query parameter name that looks like it holds a secret."""
    return bool(_SENSITIVE_NAME.search(name))


def scrub_cookie_header(value: str) -> str:
    """``a=1; b=2`` -> ``a=SCRUBBED; b=SCRUBBED`` (names kept so the shape stays readable)."""
    parts = []
    for part in value.split(";"):
        name, equals, _ = part.strip().partition("=")
        if name:
            parts.append(f"{name}={SCRUBBED}" if equals else name)
    return "; ".join(parts)


def scrub_set_cookie_header(value: str) -> str:
    """``sid=abc; Path=/; HttpOnly`` -> ``sid=SCRUBBED; Path=/; HttpOnly``.

    The cookie's value is replaced; of its attributes only the standard ones are kept.
    """
    first, _, attributes = value.partition(";")
    name, equals, _ = first.strip().partition("=")
    kept = [f"{name}={SCRUBBED}" if equals else SCRUBBED]
    for attribute in attributes.split(";"):
        if attribute.strip().partition("=")[0].strip().lower() in _COOKIE_ATTRIBUTES:
            kept.append(attribute.strip())
    return "; ".join(kept)


def scrub_header_value(name: str, value: str) -> str:
    """The value to keep for one header."""
    lowered = name.lower()
    if lowered == _VISITOR_HEADER:
        return VISITOR_ID_PLACEHOLDER
    if lowered == "cookie":
        return scrub_cookie_header(value)
    if lowered in ("set-cookie", "set-cookie2"):
        return scrub_set_cookie_header(value)
    if lowered in ("authorization", "proxy-authorization"):
        scheme, space, _ = value.partition(" ")
        return f"{scheme} {SCRUBBED}" if space else SCRUBBED
    if is_sensitive_name(name):
        return SCRUBBED
    return value


def scrub_headers(headers: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Headers (name -> values) with every secret replaced; names and order are kept."""
    return {name: [scrub_header_value(name, v) for v in values] for name, values in headers.items()}


def scrub_uri(uri: str) -> str:
    """The URI without user info and with the values of secret-looking query parameters replaced."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, SCRUBBED if is_sensitive_name(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# ----------------------------------------------------------------------------- vcrpy hooks


def before_record_request(request: Any) -> Any:
    """vcrpy hook: scrub a ``vcr.request.Request`` in place (headers and URI) and return it."""
    for name in list(request.headers.keys()):
        value = request.headers[name]
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        request.headers[name] = scrub_header_value(name, str(value))
    request.uri = scrub_uri(request.uri)
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy hook: scrub a response dict's headers (``{name: [values]}``) and return it."""
    headers = response.get("headers")
    if isinstance(headers, Mapping):
        response["headers"] = scrub_headers(
            {
                name: values if isinstance(values, list) else [values]
                for name, values in headers.items()
            }
        )
    return response


def _body_value(body: Any) -> Any:
    """A vcrpy request body as a JSON value (aiohttp's ``json=`` is recorded as the object)."""
    if body is None or isinstance(body, (dict, list)):
        return body
    if hasattr(body, "read"):  # a file-like body
        body = body.read()
    if isinstance(body, (bytes, str)):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


#: Fields the keyed shape may omit, and the value an omission means when matching.
_OMITTED_MEANS: dict[str, list[str]] = {"inputHistory": [], "outputHistory": []}


def matching_form(body: Any) -> Any:
    """A request body as replay compares it: the two shapes of one conversation are one request.

    The keyed shape may omit ``inputHistory`` and ``outputHistory`` (a conversation without
    history: the same as empty lists) and may send ``realTimeData`` (``false`` is the default,
    the same as leaving it out). So a keyed request matches a cassette recorded from the
    browser shape, and the other way round. ``model`` is never filled in: which model the
    keyed API uses when it is omitted is not known. The mock server's matching uses this too.
    """
    if not isinstance(body, dict) or not isinstance(body.get("input"), str):
        return body
    form = {**_OMITTED_MEANS, **body}
    if form.get("realTimeData") is False:
        del form["realTimeData"]
    return form


def json_body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the bodies are equal as JSON in their :func:`matching_form` (or byte for
    byte when not JSON)."""
    a, b = matching_form(_body_value(r1.body)), matching_form(_body_value(r2.body))
    if a != b or json.dumps(a, sort_keys=True, default=str) != json.dumps(
        b, sort_keys=True, default=str
    ):
        raise AssertionError(f"JSON bodies differ: {a!r} != {b!r}")


def bundled_cassette_dir(root: Path = _INSTALL_ROOT) -> Path:
    """The cassettes shipped with koala-harness, wherever the current directory is.

    ``root`` is the folder holding the installed packages: in a source checkout (an editable
    install) its ``cassettes/``, else the package data ``mockserver/bundled_cassettes``. Found
    by path, so this package still never imports the mock server.
    """
    if (root / "pyproject.toml").is_file() and (root / "cassettes").is_dir():
        return root / "cassettes"
    return root / "mockserver" / "bundled_cassettes"


def vcr_config(**overrides: Any) -> dict[str, Any]:
    """vcrpy settings for the Koala API: matching on method, path and JSON body; scrubbing.

    Use them as ``vcr.VCR(**vcr_config())`` (then call :func:`register_matchers` on it; or let
    :func:`koala_vcr` do both), or return them from pytest-recording's ``vcr_config`` fixture::

        @pytest.fixture(scope="module")
        def vcr_config():
            return koala.testing.vcr_config()

    No ``record_mode`` here, so pytest-recording's ``--record-mode`` keeps working (its default,
    like :func:`koala_vcr`'s, is ``none``: never record).
    """
    config: dict[str, Any] = {
        "match_on": ("method", "path", _MATCHER_NAME),
        "before_record_request": before_record_request,
        "before_record_response": before_record_response,
        "decode_compressed_response": False,
    }
    config.update(overrides)
    return config


def register_matchers(vcr_instance: Any) -> Any:
    """Register the ``json_body`` matcher on a ``vcr.VCR`` instance and return it."""
    vcr_instance.register_matcher(_MATCHER_NAME, json_body_matcher)
    return vcr_instance


def koala_vcr(cassette_dir: str | os.PathLike[str] | None = None, **overrides: Any) -> Any:
    """A ``vcr.VCR`` for the Koala API (see :func:`vcr_config`) that never records unless given
    ``record_mode``. ``cassette_dir`` defaults to the bundled cassettes
    (:func:`bundled_cassette_dir`), so ``koala_vcr().use_cassette("greeting.yaml")`` works from
    any directory."""
    try:
        import vcr
    except ImportError as exc:
        raise MissingDependencyError(
            "koala.testing.koala_vcr needs vcrpy: pip install 'koala-harness[test]'"
        ) from exc
    directory = cassette_dir if cassette_dir is not None else bundled_cassette_dir()
    overrides.setdefault("cassette_library_dir", str(directory))
    overrides.setdefault("record_mode", "none")
    return register_matchers(vcr.VCR(**vcr_config(**overrides)))
