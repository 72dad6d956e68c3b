"""g4f-style base classes: the async generator surface, its sync and joined forms, and models."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from .errors import ModelNotSupportedError

__all__ = ["AsyncGeneratorProvider", "ProviderModelMixin"]

_END = object()


class AsyncGeneratorProvider:
    """A provider whose primary call is the async generator ``create_async_generator``."""

    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = False

    @classmethod
    def create_async_generator(
        cls,
        model: str,
        messages: Any,
        proxy: str | None = None,
        connector: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        raise NotImplementedError

    @classmethod
    def create_completion(
        cls, model: str, messages: Any, stream: bool = True, **kwargs: Any
    ) -> Iterator[Any]:
        """The chunks of ``create_async_generator``, as a plain generator.

        The async generator runs on an event loop of its own in a worker thread, so this works
        from any thread, including one that already runs an event loop (no nest_asyncio needed).
        Closing this generator early cancels the request.
        """
        chunks: queue.Queue[Any] = queue.Queue(maxsize=64)
        stop = threading.Event()
        running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

        async def pump() -> None:
            task = asyncio.current_task()
            assert task is not None
            running.append((asyncio.get_running_loop(), task))
            if stop.is_set():  # closed before the worker started
                return
            agen = cls.create_async_generator(model, messages, **kwargs)
            try:
                async for chunk in agen:
                    while not stop.is_set():
                        try:
                            chunks.put(chunk, timeout=0.05)
                            break
                        except queue.Full:
                            await asyncio.sleep(0)
                    if stop.is_set():
                        break
            finally:
                await agen.aclose()  # type: ignore[attr-defined]

        def run() -> None:
            try:
                asyncio.run(pump())
            except BaseException as exc:
                chunks.put(exc)
            else:
                chunks.put(_END)

        worker = threading.Thread(target=run, name=f"{cls.__name__}-completion", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # Cancel the request: the stream may be stalled, and nothing else would wake it.
            for loop, task in running:
                with contextlib.suppress(RuntimeError):  # the loop has already finished
                    loop.call_soon_threadsafe(task.cancel)
            while worker.is_alive():  # drain so a blocked put() can see the stop flag
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.05)

    @classmethod
    async def create_async(cls, model: str, messages: Any, **kwargs: Any) -> str:
        """The whole answer: the string chunks joined (other values are left out)."""
        parts = []
        async for chunk in cls.create_async_generator(model, messages, **kwargs):
            if isinstance(chunk, str):
                parts.append(chunk)
        return "".join(parts)


class ProviderModelMixin:
    """Models a provider knows, their aliases, and the default used for an empty name."""

    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def get_models(cls) -> list[str]:
        return list(cls.models) or ([cls.default_model] if cls.default_model else [])

    @classmethod
    def get_model(cls, model: str | None) -> str:
        """The model to send: the default for an empty name, an alias resolved, else as given.

        Raises :class:`ModelNotSupportedError` for a name that is neither known nor an alias.
        """
        if not model:
            return cls.default_model
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        known = cls.get_models()
        if model not in known:
            raise ModelNotSupportedError(model, known + sorted(cls.model_aliases))
        return model
