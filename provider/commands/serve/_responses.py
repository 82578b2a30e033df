"""``POST /v1/responses``: OpenAI's Responses API over the same chat as chat completions.

The request (``input`` as a string or message items, ``instructions``,
``previous_response_id``, ``store``) becomes the library's messages; the answer is
a ``response`` object, or with ``"stream": true`` the typed events clients read
(``response.created`` … ``response.output_text.delta`` … ``response.completed``),
each with its ``sequence_number``. A failure after the stream started is an
``error`` event and then ``response.failed``.

Conversations: a stored response (``store`` is true unless the client says
otherwise) keeps its whole conversation for :data:`CONVERSATION_SECONDS` in the
provider's credential store (files, or Redis for a fleet), so a
``previous_response_id`` continues it on any host; ``store: false`` keeps nothing.

What the site cannot do (tools, images and files, reasoning, structured output…)
is a 400 naming the parameter, never dropped silently; sampling hints the site
has no knob for (``temperature``, ``top_p``, ``max_output_tokens``) are accepted
and have no effect, as with chat completions.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from provider.commands.serve._state import ServerState
from provider.commands.serve._wire import (
    CHARS_PER_TOKEN,
    SSE_HEADERS,
    APIError,
    ChatRequest,
    _as_api_error,
    non_empty_list,
)
from provider.store import Store, store_for

#: The store namespace the conversations are kept under.
NAMESPACE = "responses"

#: Parameters read and acted on.
_USED = frozenset(
    {"model", "input", "instructions", "stream", "store", "previous_response_id", "metadata"}
)
#: Accepted, without effect: the site has no knob for them (as with chat completions).
_HINTS = frozenset(
    {
        "temperature",
        "top_p",
        "max_output_tokens",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "truncation",
        "parallel_tool_calls",
        "stream_options",
    }
)
#: value taken as "not asked for" per parameter that would otherwise be refused.
_HARMLESS: dict[str, tuple[object, ...]] = {
    "tools": (None, []),
    "tool_choice": (None, "auto", "none"),
    "include": (None, []),
    "reasoning": (None, {}),
    "background": (None, False),
    "top_logprobs": (None, 0),
    "text": (None, {}, {"format": {"type": "text"}}),
}
_WHY = {
    "tools": "this site only chats: it cannot call tools",
    "tool_choice": "this site only chats: it cannot call tools",
    "include": "there is nothing extra to include (no tools, no reasoning, no logprobs)",
    "reasoning": "this site's models do not expose reasoning",
    "background": "responses run while the request is open; background mode is not offered",
    "top_logprobs": "this site reports no log probabilities",
    "text": "this site answers in plain text only: no JSON schema or other format",
}


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsesRequest:
    model: str
    #: This request's turns, without the instructions and without earlier turns.
    messages: list[dict[str, Any]]
    instructions: str | None
    stream: bool
    store: bool
    previous_response_id: str | None
    metadata: dict[str, Any]


def parse_responses_request(body: object) -> ResponsesRequest:
    """What the site can act on; a 400 naming any parameter it cannot honour."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_request")
    for name, value in body.items():
        if name in _USED or name in _HINTS:
            continue
        if name in _HARMLESS:
            if _is_harmless(name, value):
                continue
            raise APIError(400, f"'{name}' is not supported: {_WHY[name]}", param=name)
        raise APIError(
            400,
            f"'{name}' is not supported by this endpoint; it takes "
            f"{', '.join(sorted(_USED))} (and ignores {', '.join(sorted(_HINTS))})",
            param=name,
            code="unsupported_parameter",
        )
    model = body.get("model") or ""
    if not isinstance(model, str):
        raise APIError(400, "'model' must be a string", param="model", code="invalid_type")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise APIError(
            400, "'instructions' must be a string", param="instructions", code="invalid_type"
        )
    flags = {}
    for name, default in (("stream", False), ("store", True)):
        value = body.get(name)
        flags[name] = default if value is None else value
        if not isinstance(flags[name], bool):
            raise APIError(400, f"'{name}' must be true or false", param=name, code="invalid_type")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise APIError(
            400,
            "'previous_response_id' must be a string",
            param="previous_response_id",
            code="invalid_type",
        )
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise APIError(400, "'metadata' must be an object", param="metadata", code="invalid_type")
    return ResponsesRequest(
        model=model,
        messages=_input(body.get("input")),
        instructions=instructions or None,
        stream=flags["stream"],
        store=flags["store"],
        previous_response_id=previous or None,
        metadata=metadata,
    )


def _is_harmless(name: str, value: object) -> bool:
    if name == "text" and isinstance(value, dict):
        # {"format": {"type": "text"}} and/or a verbosity hint: plain text, as the site answers.
        return value.get("format") in (None, {"type": "text"}) and set(value) <= {
            "format",
            "verbosity",
        }
    return any(value == ok and type(value) is type(ok) for ok in _HARMLESS[name])


def _input(raw: object) -> list[dict[str, Any]]:
    """``input`` → the library's ``{"role", "content": str}`` messages (text only)."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    out = []
    items = non_empty_list(raw, "input", "a string or a non-empty array of message items")
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise APIError(400, f"{where} must be an object", param=where)
        kind = item.get("type", "message")
        if kind != "message":
            raise APIError(
                400,
                f"{where} is a {kind!r} item: this site takes message items only "
                "(no tool calls or their outputs, no reasoning items)",
                param=where,
            )
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise APIError(
                400,
                f"{where} has role {role!r}: use user, assistant, system or developer",
                param=f"{where}.role",
            )
        out.append({"role": role, "content": _text(item.get("content"), where)})
    return out


def _text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise APIError(400, f"{where}.content must be a string or an array of parts", param=where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind not in ("input_text", "output_text", "text"):
            raise APIError(
                400,
                f"{where}.content[{j}] is a {kind!r} part: this site takes text only "
                "(no images, files or audio)",
                param=f"{where}.content",
            )
        assert isinstance(part, dict)
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


# -- the conversation kept between responses ------------------------------------------------


async def earlier_turns(state: ServerState, previous: str | None) -> list[dict[str, Any]]:
    """The stored conversation ``previous`` ended; 404 in OpenAI's shape when it is unknown."""
    if previous is None:
        return []
    raw = await _store(state).get_value(NAMESPACE, previous)
    if raw is None:
        raise APIError(
            404,
            f"Previous response with id '{previous}' not found: it was never stored here "
            f"(store: false), or it is older than {state.conversation_seconds:.0f} s; "
            "send the whole conversation in 'input' instead",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    messages: list[dict[str, Any]] = json.loads(raw)["messages"]
    return messages


async def keep(state: ServerState, reply: ResponseReply, text: str) -> None:
    """Store the conversation this response ended (its instructions stay out: OpenAI
    does not carry ``instructions`` over to a continued response)."""
    turns = [*reply.turns, {"role": "assistant", "content": text}]
    value = json.dumps({"model": reply.model, "messages": turns}, ensure_ascii=False)
    await _store(state).put_value(NAMESPACE, reply.id, value, state.conversation_seconds)


def _store(state: ServerState) -> Store:
    return store_for(state.provider.cache_dir, state.provider.store)


# -- the response object and its events ----------------------------------------------------


@dataclass
class ResponseReply:
    """One response being made: its ids, the request it answers, and the text so far."""

    model: str
    request: ResponsesRequest
    #: earlier turns + this request's (what a continuation builds on)
    turns: list[dict[str, Any]]
    text: str = ""
    id: str = field(default_factory=lambda: "resp_" + secrets.token_hex(24))
    item_id: str = field(default_factory=lambda: "msg_" + secrets.token_hex(24))
    created_at: int = field(default_factory=lambda: int(time.time()))
    arrived: float = field(default_factory=time.monotonic)
    sequence: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        """What the library is sent: instructions first, then the conversation."""
        head = (
            [{"role": "system", "content": self.request.instructions}]
            if self.request.instructions
            else []
        )
        return head + self.turns

    def chat(self) -> ChatRequest:
        return ChatRequest(self.model, self.messages, self.request.stream, include_usage=True)

    def usage(self) -> dict[str, Any]:
        prompt = -(-sum(len(m["content"]) for m in self.messages) // CHARS_PER_TOKEN)
        completion = -(-len(self.text) // CHARS_PER_TOKEN)
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
            # The site reports no token counts: these are characters / 4.
            "estimated": True,
        }

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}

    def item(self, status: str) -> dict[str, Any]:
        content = [self.part()] if status == "completed" else []
        return {
            "type": "message",
            "id": self.item_id,
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def body(self, status: str, error: APIError | None = None) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if done else None,
            "status": status,
            "error": (
                None
                if error is None
                else {
                    "code": "rate_limit_exceeded" if error.status == 429 else "server_error",
                    "message": error.message,
                }
            ),
            "incomplete_details": None,
            "instructions": self.request.instructions,
            "max_output_tokens": None,
            "metadata": self.request.metadata,
            "model": self.model,
            "output": [self.item("completed")] if done else [],
            "parallel_tool_calls": False,
            "previous_response_id": self.request.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": self.request.store,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "none",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            "usage": self.usage() if done else None,
            "user": None,
        }

    def event(self, kind: str, **fields: Any) -> bytes:
        """One typed SSE event (``event:`` line and ``data:``), numbered in order."""
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return (
            f"event: {kind}\ndata: ".encode()
            + json.dumps(data, ensure_ascii=False).encode()
            + b"\n\n"
        )

    def where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}


async def stream_response(
    request: web.Request, state: ServerState, first: str | None, rest: Any, reply: ResponseReply
) -> web.StreamResponse:
    """The typed events, from the first chunk (already read, so an early error kept its
    HTTP status) to ``response.completed``; a later failure ends with ``response.failed``."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    where = reply.where()
    try:
        await response.write(reply.event("response.created", response=reply.body("in_progress")))
        await response.write(
            reply.event("response.in_progress", response=reply.body("in_progress"))
        )
        await response.write(
            reply.event(
                "response.output_item.added", output_index=0, item=reply.item("in_progress")
            )
        )
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        await response.write(reply.event("response.content_part.added", **where, part=empty))
        if first is not None:
            await _delta(response, reply, first)
            async for text in rest:
                await _delta(response, reply, text)
        await response.write(
            reply.event("response.output_text.done", **where, text=reply.text, logprobs=[])
        )
        await response.write(reply.event("response.content_part.done", **where, part=reply.part()))
        await response.write(
            reply.event("response.output_item.done", output_index=0, item=reply.item("completed"))
        )
        if reply.request.store:
            await keep(state, reply, reply.text)
        await response.write(reply.event("response.completed", response=reply.body("completed")))
    except ConnectionResetError:
        raise  # the client left: the caller's finally closes the upstream
    except Exception as exc:
        state.metrics.error(exc)
        error = _as_api_error(exc)
        await response.write(
            reply.event("error", code=error.code, message=error.message, param=error.param)
        )
        await response.write(reply.event("response.failed", response=reply.body("failed", error)))
    await response.write_eof()
    return response


async def _delta(response: web.StreamResponse, reply: ResponseReply, text: str) -> None:
    if text:
        reply.text += text
        await response.write(
            reply.event("response.output_text.delta", **reply.where(), delta=text, logprobs=[])
        )
