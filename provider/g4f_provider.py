"""A drop-in g4f provider: ``ChatgptFree`` as a genuine g4f provider class.

Needs g4f (``pip install ".[g4f]"``); ``import provider`` never imports this
module, so the library works without g4f. Importing this module without g4f
raises an ``ImportError`` that says how to install it.

>>> import g4f.client                                                  # doctest: +SKIP
>>> from provider.g4f_provider import ChatgptFree, make_g4f_provider   # doctest: +SKIP
>>> client = g4f.client.AsyncClient(provider=ChatgptFree)              # doctest: +SKIP
>>> reply = await client.chat.completions.create(                      # doctest: +SKIP
...     model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
... )
>>> MySite = make_g4f_provider("https://example.org/chat/")            # doctest: +SKIP

The class subclasses g4f's ``AsyncGeneratorProvider`` and ``ProviderModelMixin``
*and* this library's ``ChatgptFree`` (first in the MRO, so its ``url``,
``models``, ``get_model`` and ``create_async_generator`` win): g4f sees one of
its own providers, and every call runs this library — its credential store,
its browser fallback, and its errors (:class:`provider.errors.ProviderError`
subclasses, raised through g4f unchanged). A subclass that sets ``url`` talks
to another site, as with the library class.

g4f is untyped: its classes are typed ``Any`` here.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from provider._provider import ChatgptFree as _Library

__all__ = ["INSTALL_HINT", "ChatgptFree", "make_g4f_provider"]

INSTALL_HINT = 'install g4f with: pip install ".[g4f]"  (or: pip install g4f)'


def _g4f_bases() -> tuple[Any, Any]:
    try:
        base = importlib.import_module("g4f.providers.base_provider")
    except ImportError as exc:
        raise ImportError(
            f"provider.g4f_provider needs the g4f package, which is not installed: {INSTALL_HINT}"
        ) from exc
    return base.AsyncGeneratorProvider, base.ProviderModelMixin


if TYPE_CHECKING:  # g4f ships no types: stand-ins for the checker

    class AsyncGeneratorProvider:
        pass

    class ProviderModelMixin:
        pass

else:
    AsyncGeneratorProvider, ProviderModelMixin = _g4f_bases()


class ChatgptFree(_Library, AsyncGeneratorProvider, ProviderModelMixin):
    """ChatGPT Free for g4f: ``g4f.client.AsyncClient(provider=ChatgptFree)``.

    ``model`` may be empty or g4f's ``"auto"`` (the default model), a model or
    an alias; anything else raises ``ModelNotSupportedError``.
    """

    label = "ChatGPT Free (chatgptfree-provider)"
    working = True
    needs_auth = False
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
    # g4f's own stream timeout wraps the whole answer; the library's ``timeout``
    # already bounds every gap between chunks.
    use_stream_timeout = False

    @classmethod
    def get_model(cls, model: str | None, **kwargs: Any) -> str:
        return super().get_model("" if model == "auto" else model, **kwargs)

    @classmethod
    def get_models(cls, **_: Any) -> list[str]:
        return list(cls.models)

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Any,
        proxy: str | None = None,
        timeout: float = 120,  # noqa: ASYNC109 - g4f's signature
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """The library's generator; g4f's extra keywords (``stream``, ``api_key``,
        ``base_url``, ``conversation``…) are accepted and ignored."""
        async for chunk in super().create_async_generator(
            "" if model == "auto" else model,
            messages,
            proxy=proxy,
            timeout=120 if timeout is None else timeout,
            cookies=cookies,
            **kwargs,
        ):
            yield chunk


def make_g4f_provider(
    url: str, *, name: str = "ChatgptFreeSite", **attrs: Any
) -> type[ChatgptFree]:
    """A g4f provider class for another site running the plugin.

    ``attrs`` are the library's class settings: ``chat_path``, ``bot_id``,
    ``browser`` (``auto`` | ``never`` | ``always``), ``cache_dir``…

    >>> Site = make_g4f_provider("https://example.org", browser="never")  # doctest: +SKIP
    >>> g4f.client.AsyncClient(provider=Site)                             # doctest: +SKIP
    """
    unknown = sorted(k for k in attrs if not hasattr(_Library, k))
    if unknown:
        raise TypeError(f"make_g4f_provider: unknown setting(s) {', '.join(unknown)}")
    return type(name, (ChatgptFree,), {"url": url, **attrs})
