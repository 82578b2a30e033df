"""``python -m provider.serve``: an OpenAI-compatible HTTP endpoint in front of ChatgptFree.

One host that can reach the site (and run a browser for its challenge) serves
every tool that already speaks the OpenAI API::

    python -m provider.serve --port 1337            # then base_url http://127.0.0.1:1337/v1

Routes (aiohttp.web, one small handler each):

* ``POST /v1/chat/completions`` — the OpenAI request shape; a ``chat.completion``
  object, or with ``"stream": true`` ``text/event-stream`` ``chat.completion.chunk``
  events ending with ``data: [DONE]``. Usage is estimated (characters / 4) and
  marked ``"estimated": true``.
* ``POST /v1/responses`` — OpenAI's Responses API: a ``response`` object, or typed
  events (``response.created`` … ``response.output_text.delta`` …
  ``response.completed``); ``previous_response_id`` continues a stored conversation,
  kept in the credential store (see :mod:`provider.commands.serve._responses`).
* ``GET /v1/models``, ``GET /v1/models/{model}`` — the models and aliases.
* ``GET /health`` — liveness and the stored credentials' state (no secrets).
* ``GET /metrics`` — Prometheus text format (behind the API key when one is set).

Errors come in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
with the status :data:`ERROR_STATUS` gives the library's error class. An error
after a stream has started arrives as a final ``data: {"error": …}`` event,
then the stream ends (without ``[DONE]``).

Every client shares the provider class's credential store, so its single-flight
refreshes (one page read, one browser) serve concurrent requests. A client that
hangs up cancels its request, which closes the library's async generator and
with it the upstream connection — this needs ``handler_cancellation=True`` on
the runner, which :func:`running` and the command set.
"""

from provider.commands.serve._app import (
    DEFAULT_HOST,
    ENV_API_KEY,
    MAX_BODY_BYTES,
    Server,
    is_loopback,
    make_app,
    refuse_exposure,
    running,
)
from provider.commands.serve._command import DEFAULT_PORT, build_parser, main
from provider.commands.serve._state import STATE, ServerState
from provider.commands.serve._wire import (
    CHARS_PER_TOKEN,
    ERROR_STATUS,
    OWNER,
    APIError,
    ChatRequest,
    parse_chat_request,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENV_API_KEY",
    "ERROR_STATUS",
    "MAX_BODY_BYTES",
    "OWNER",
    "STATE",
    "APIError",
    "ChatRequest",
    "Server",
    "ServerState",
    "build_parser",
    "is_loopback",
    "main",
    "make_app",
    "parse_chat_request",
    "refuse_exposure",
    "running",
]
