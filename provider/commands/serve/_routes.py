"""The routes: one small handler each (aiohttp.web route table)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from provider.commands.serve._responses import (
    ResponseReply,
    earlier_turns,
    keep,
    parse_responses_request,
    stream_response,
)
from provider.commands.serve._state import STATE, ServerState
from provider.commands.serve._wire import (
    SSE_HEADERS,
    APIError,
    ChatRequest,
    _as_api_error,
    _models,
    _Reply,
    _sse,
    parse_chat_request,
    resolve_model,
    unknown_model,
)
from scraper.errors import ProviderError
from scraper.releases import release_class


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "the request body is not valid JSON", code="invalid_json") from None


# -- handlers ------------------------------------------------------------------------------

ROUTES = web.RouteTableDef()


@ROUTES.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    chat = parse_chat_request(await _json_body(request))
    model = resolve_model(state.provider, chat.model)
    reply = _Reply(model=model, prompt_chars=sum(len(m["content"]) for m in chat.messages))
    async with _upstream(state, chat) as chunks:
        if chat.stream:
            return await _stream(request, chunks, reply, chat.include_usage)
        iterator = aiter(chunks)
        first = await anext(iterator, None)
        _first_chunk(request, reply.arrived)
        text = (first or "") + "".join([chunk async for chunk in iterator])
    reply.completion_chars = len(text)
    return web.json_response(
        {
            "id": reply.id,
            "object": "chat.completion",
            "created": reply.created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": reply.usage(),
            "system_fingerprint": None,
        }
    )


@ROUTES.post("/v1/responses")
async def responses(request: web.Request) -> web.StreamResponse:
    """OpenAI's Responses API (see :mod:`provider.commands.serve._responses`)."""
    state = request.app[STATE]
    asked = parse_responses_request(await _json_body(request))
    model = resolve_model(state.provider, asked.model)
    turns = await earlier_turns(state, asked.previous_response_id) + asked.messages
    reply = ResponseReply(model=model, request=asked, turns=turns)
    async with _upstream(state, reply.chat()) as chunks:
        # The first chunk before any header: an early error keeps its own HTTP status.
        iterator = aiter(chunks)
        first = await anext(iterator, None)
        _first_chunk(request, reply.arrived)
        if asked.stream:
            return await stream_response(request, state, first, iterator, reply)
        reply.text = (first or "") + "".join([chunk async for chunk in iterator])
    if asked.store:
        await keep(state, reply, reply.text)
    return web.json_response(reply.body("completed"))


@ROUTES.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    provider = request.app[STATE].provider
    return web.json_response({"object": "list", "data": _models(provider)})


@ROUTES.get("/v1/models/{model}")
async def retrieve_model(request: web.Request) -> web.Response:
    provider = request.app[STATE].provider
    wanted = request.match_info["model"]
    for entry in _models(provider):
        if entry["id"] == wanted:
            return web.json_response(entry)
    raise unknown_model(provider, f"The model '{wanted}' does not exist here")


@ROUTES.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; behind the API key when one is set."""
    state = request.app[STATE]
    return web.Response(
        body=state.metrics.render(), headers={"Content-Type": state.metrics.content_type}
    )


@ROUTES.get("/health")
async def health(request: web.Request) -> web.Response:
    """Liveness plus the stored credentials' state; never a nonce or a cookie value."""
    state = request.app[STATE]
    target = state.provider.target(state.proxy)
    try:
        creds = state.provider.stored_credentials(state.proxy)
    except ProviderError as exc:  # an unusable cache dir: say so, stay up
        credentials: dict[str, Any] | None = {"error": str(exc)}
    else:
        now = time.time()
        credentials = (
            None
            if creds is None
            else {
                "generation": creds.generation,
                "release": creds.release,
                "release_class": release_class(creds.release),
                "source": creds.source,
                "fresh": creds.fresh(now),
                "obtained_at": _iso(creds.obtained_at),
                "expires_at": _iso(creds.expires_at),
                "expires_in_seconds": round(creds.expires_at - now, 1),
                "clearance": any(c.name == "cf_clearance" for c in creds.cookies),
                "transport": creds.transport,
            }
        )
    return web.json_response(
        {
            "status": "ok",
            "uptime_seconds": round(time.time() - state.started, 3),
            "in_flight": state.in_flight,
            "served": state.served,
            "auth": state.api_key is not None,
            "sites": [
                {
                    "site": target.site,
                    # The proxy in effect (argument or environment), password redacted.
                    **target.proxy_report(),
                    "credentials": credentials,
                }
            ],
        }
    )


@contextlib.asynccontextmanager
async def _upstream(state: ServerState, chat: ChatRequest) -> AsyncIterator[AsyncIterator[str]]:
    """The library's generator, counted while open and always closed (aclose) at the end:
    on success, error, and when a client that hung up cancels the handler."""
    chunks = state.provider.create_async_generator(
        chat.model, chat.messages, proxy=state.proxy, timeout=state.timeout
    )
    state.in_flight += 1
    state.served += 1
    try:
        # The chat's browser, if its site needs the browser transport, is the server's
        # warm one (the generator runs in this task, inside this block).
        with state.browsers.use() if state.browsers else contextlib.nullcontext():
            yield chunks
    finally:
        try:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            state.in_flight -= 1


async def _stream(
    request: web.Request, chunks: AsyncIterator[str], reply: _Reply, include_usage: bool
) -> web.StreamResponse:
    # Wait for the first chunk before sending headers: an error before any text
    # still gets its own HTTP status (401/404/429/503/504) instead of an event.
    iterator = aiter(chunks)
    first: str | None
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = None
    _first_chunk(request, reply.arrived)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    try:
        await response.write(reply.chunk({"role": "assistant", "content": ""}))
        if first:
            reply.completion_chars += len(first)
            await response.write(reply.chunk({"content": first}))
        if first is not None:
            async for text in iterator:
                if text:
                    reply.completion_chars += len(text)
                    await response.write(reply.chunk({"content": text}))
        await response.write(reply.chunk({}, "stop"))
        if include_usage:
            await response.write(reply.chunk(None, usage=reply.usage()))
        await response.write(b"data: [DONE]\n\n")
    except ConnectionResetError:
        raise  # the client left: the caller's finally closes the upstream
    except Exception as exc:
        # Headers are gone: the error becomes the last event, then the stream ends.
        request.app[STATE].metrics.error(exc)
        await response.write(_sse(_as_api_error(exc).body()))
    await response.write_eof()
    return response


def _first_chunk(request: web.Request, arrived: float) -> None:
    """Time from the chat request's arrival to the first chunk (or an empty answer's end)."""
    request.app[STATE].metrics.first_chunk.observe(time.monotonic() - arrived)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
