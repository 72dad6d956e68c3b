"""The original provider, gpt4free's ``g4f/Provider/not_working/Koala.py``, as an audit client.

Checked with g4f 0.3.3.4 (the last release that ships it is not known; 0.3.3.4 does). Importing
``g4f`` itself runs every provider module, and some of them make network requests at import time
(0.3.3.4's ``Airforce`` fetches a model list), so this loads only the modules ``Koala`` needs:
``g4f``, ``g4f.Provider`` and ``g4f.Provider.not_working`` are registered as bare packages whose
``__init__`` is not run, and any host name lookup during the import is refused. The class itself
is g4f's own, unchanged; it is pointed at the mock through a subclass (it reads
``cls.api_endpoint``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mockserver.audit.clients import Client, ClientSpecError, Messages

__all__ = ["CHECKED_VERSION", "MODULE", "g4f_client", "installed_version", "load_g4f_koala"]

CHECKED_VERSION = "0.3.3.4"
MODULE = "g4f.Provider.not_working.Koala"
_BARE_PACKAGES = ("g4f", "g4f.Provider", "g4f.Provider.not_working")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def g4f_client() -> Client:
    koala_class = load_g4f_koala()
    model = getattr(koala_class, "default_model", "gpt-4o-mini")

    def call(api_endpoint: str, messages: Messages) -> Any:
        at_mock: Any = type("KoalaAtMock", (koala_class,), {"api_endpoint": api_endpoint})
        return at_mock.create_async_generator(model, list(messages))

    return Client(f"g4f {installed_version()}", call)


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("g4f")
    except PackageNotFoundError:
        return None


def load_g4f_koala() -> type:
    """g4f's own ``Koala`` class; ClientSpecError when g4f (or its Koala) is not installed."""
    if MODULE in sys.modules:
        return _koala_class(sys.modules[MODULE])
    spec = importlib.util.find_spec("g4f") if "g4f" not in sys.modules else None
    if "g4f" not in sys.modules and (spec is None or not spec.submodule_search_locations):
        raise ClientSpecError(
            f"--client g4f: g4f is not installed (pip install g4f=={CHECKED_VERSION})"
        )
    if spec is not None:
        root = Path(next(iter(spec.submodule_search_locations or [])))
        source = root / "Provider" / "not_working" / "Koala.py"
        if not source.is_file():
            raise ClientSpecError(
                f"--client g4f: g4f {installed_version()} has no {source.relative_to(root.parent)}"
                f" (g4f {CHECKED_VERSION} has it)"
            )
        for name in _BARE_PACKAGES:
            if name not in sys.modules:
                sys.modules[name] = _bare_package(name, root)
    try:
        with _no_host_lookups():
            module = importlib.import_module(MODULE)
    except Exception as exc:
        raise ClientSpecError(f"--client g4f: cannot import {MODULE}: {exc}") from None
    return _koala_class(module)


def _koala_class(module: types.ModuleType) -> type:
    koala_class = getattr(module, "Koala", None)
    if not isinstance(koala_class, type):
        raise ClientSpecError(f"--client g4f: {MODULE} has no Koala class")
    return koala_class


def _bare_package(name: str, root: Path) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
    package.__package__ = name
    return package


@contextlib.contextmanager
def _no_host_lookups() -> Iterator[None]:
    """Refuse name lookups of anything but loopback (no import may reach the network)."""
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            raise OSError(f"the audit refused a network lookup of {name!r} while importing g4f")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = loopback_only
    try:
        yield
    finally:
        socket.getaddrinfo = real
