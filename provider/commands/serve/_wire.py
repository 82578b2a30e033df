"""The OpenAI wire shapes: the request the server accepts, the chat.completion and
chat.completion.chunk objects it answers, and errors in OpenAI's shape."""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from provider._provider import ChatgptFree
from scraper.errors import (
    AccessError,
    BrowserError,
    ConfigurationError,
    InvalidInputError,
    MessageRejectedError,
    ModelNotSupportedError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitedError,
    SiteError,
    UpstreamError,
)

log = logging.getLogger(__name__)

#: Characters per token for the estimated usage (OpenAI's rule of thumb for English).
CHARS_PER_TOKEN = 4
OWNER = "chatgptfree"

#: Library error class → (HTTP status, OpenAI error type, code). The first match
#: in this order wins, so subclasses come before their bases.
ERROR_STATUS: tuple[tuple[type[ProviderError], int, str, str], ...] = (
    (ModelNotSupportedError, 404, "invalid_request_error", "model_not_found"),
    # A bad PROVIDER_CACHE_DIR or proxy is the server's own setting, not the client's.
    (ConfigurationError, 500, "server_error", "configuration_error"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_request"),
    # Banned words / moderation / a ban on this visitor: the same request will not pass.
    (MessageRejectedError, 400, "invalid_request_error", "content_filter"),
    (QuotaExceededError, 429, "rate_limit_error", "insufficient_quota"),
    (RateLimitedError, 429, "rate_limit_error", "rate_limit_exceeded"),
    # Blocked, a challenge not passed, guests refused: this server cannot get through.
    (AccessError, 503, "server_error", "site_blocked"),
    (BrowserError, 503, "server_error", "browser_unavailable"),
    (ProviderTimeoutError, 504, "server_error", "timeout"),
    (NetworkError, 502, "server_error", "site_unreachable"),
    (UpstreamError, 502, "server_error", "upstream_error"),
    (SiteError, 502, "server_error", "site_error"),
    (ProviderError, 502, "server_error", "provider_error"),
)


# -- errors in OpenAI's shape ------------------------------------------------------------


class APIError(Exception):
    """An error answered in OpenAI's shape with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    @classmethod
    def from_provider(cls, exc: ProviderError) -> APIError:
        status, type_, code = next(
            (status, type_, code)
            for kind, status, type_, code in ERROR_STATUS
            if isinstance(exc, kind)
        )
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after", None)
        if status == 429 and isinstance(retry_after, int | float) and retry_after >= 0:
            headers["Retry-After"] = str(math.ceil(retry_after))
        # The library's messages never carry a nonce, cookie value or proxy password.
        return cls(status, str(exc), type=type_, code=code, headers=headers)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def _as_api_error(exc: BaseException) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ProviderError):
        return APIError.from_provider(exc)
    log.exception("internal error while answering", exc_info=exc)
    return APIError(
        500,
        f"internal error ({type(exc).__name__}); the server's log has the details",
        type="server_error",
        code="internal_error",
    )


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool


def parse_chat_request(body: object) -> ChatRequest:
    """The fields the site can act on; the rest (temperature, max_tokens…) are ignored."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_request")
    model = body.get("model", "")
    if model is None:
        model = ""
    if not isinstance(model, str):
        raise APIError(400, "'model' must be a string", param="model", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, "'stream' must be true or false", param="stream", code="invalid_type")
    n = body.get("n", 1)
    if n not in (1, None):
        raise APIError(400, "this site answers with one choice only: 'n' must be 1", param="n")
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(
        model=model,
        messages=_messages(body.get("messages")),
        stream=stream,
        include_usage=include_usage,
    )


def _messages(raw: object) -> list[dict[str, Any]]:
    """OpenAI messages → the library's ``{"role", "content": str}`` dicts.

    Content given as parts keeps its text parts (joined by newlines); the site
    takes text only, so any other part is refused. Roles and the rest are
    checked by the library.
    """
    raw = non_empty_list(raw, "messages", "a non-empty array of {role, content} objects")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise APIError(400, f"messages[{i}] must be an object", param=f"messages[{i}]")
        content = message.get("content")
        if content is None:
            content = ""  # an assistant turn that only called tools
        elif isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                    raise APIError(
                        400,
                        f"messages[{i}].content[{j}] is a {kind!r} part: this site takes text only",
                        param=f"messages[{i}].content",
                    )
                texts.append(str(part.get("text", "")))
            content = "\n".join(texts)
        out.append({"role": message.get("role"), "content": content})
    return out


def non_empty_list(raw: object, param: str, what: str) -> list[Any]:
    """``raw`` if it is a non-empty list, else a 400 saying ``param`` must be ``what``."""
    if not isinstance(raw, list) or not raw:
        raise APIError(
            400,
            f"'{param}' must be {what}",
            param=param,
            code="invalid_type" if raw is not None else "missing_required_parameter",
        )
    return raw


#: A streamed answer's headers (chat completion chunks or Responses-API events).
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx in front not to buffer
}


# -- the pieces ------------------------------------------------------------------------------


@dataclass
class _Reply:
    model: str
    prompt_chars: int
    completion_chars: int = 0
    id: str = field(default_factory=lambda: "chatcmpl-" + secrets.token_hex(12))
    created: int = field(default_factory=lambda: int(time.time()))
    #: time.monotonic() when the request was read, for the first-chunk latency
    arrived: float = field(default_factory=time.monotonic)

    def usage(self) -> dict[str, Any]:
        prompt = math.ceil(self.prompt_chars / CHARS_PER_TOKEN)
        completion = math.ceil(self.completion_chars / CHARS_PER_TOKEN)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            # The site reports no token counts: these are characters / 4.
            "estimated": True,
        }

    def chunk(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
    ) -> bytes:
        event = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": (
                [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
                if delta is not None
                else []
            ),
            **extra,
        }
        return _sse(event)


def _sse(data: object) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


def resolve_model(provider: type[ChatgptFree], wanted: str) -> str:
    """The model ``wanted`` names (empty: the default); an unknown one is a 404 whose
    message lists what this endpoint offers, so the way out is in the error."""
    try:
        return provider.get_model(wanted)
    except ModelNotSupportedError as exc:
        raise unknown_model(provider, str(exc)) from None


def unknown_model(provider: type[ChatgptFree], said: str) -> APIError:
    offered = ", ".join(entry["id"] for entry in _models(provider))
    return APIError(
        404,
        f"{said}; this endpoint offers: {offered} (GET /v1/models)",
        param="model",
        code="model_not_found",
    )


def _models(provider: type[ChatgptFree]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in provider.models
    ]
    if provider.default_model not in provider.models:
        entries.insert(
            0, {"id": provider.default_model, "object": "model", "created": 0, "owned_by": OWNER}
        )
    for alias, target in provider.model_aliases.items():
        entries.append(
            {"id": alias, "object": "model", "created": 0, "owned_by": OWNER, "alias_of": target}
        )
    return entries
