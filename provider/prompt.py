"""Checking the caller's messages and turning them into the one prompt the site takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scraper.errors import InvalidInputError

__all__ = ["MAX_PROMPT_CHARS", "ROLES", "format_prompt", "validate_messages"]

#: Roles the OpenAI message format knows; anything else is a caller's mistake.
ROLES = frozenset({"system", "user", "assistant", "developer", "tool", "function"})

#: The longest prompt we send. The plugin posts the message as a form field and
#: PHP's default post_max_size is 8 MB, but the site's model context is far
#: smaller: past this the site would only truncate or fail, so we refuse early.
MAX_PROMPT_CHARS = 100_000

Message = Mapping[str, Any]


def validate_messages(messages: object) -> list[Message]:
    """Return ``messages`` if it is a non-empty list of ``{"role", "content"}`` dicts.

    Raises :class:`InvalidInputError` naming the first bad item otherwise.
    """
    # type() first: a list of dicts, the usual shape, needs no ABC look-up.
    if type(messages) is not list and (
        isinstance(messages, str | bytes) or not isinstance(messages, Sequence)
    ):
        raise InvalidInputError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidInputError("messages is empty: pass at least one {'role': 'user', ...}")
    for i, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise InvalidInputError(
                f"messages[{i}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidInputError(
                f"messages[{i}] has role {role!r}: use one of {', '.join(sorted(ROLES))}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidInputError(
                f"messages[{i}]['content'] must be a string, not {type(content).__name__}"
            )
    return list(messages)


def format_prompt(
    messages: Sequence[Message],
    add_special_tokens: bool = False,
    do_continue: bool = False,
    include_system: bool = True,
) -> str:
    """The original g4f ``format_prompt``: one prompt string from the messages.

    A single message (with ``add_special_tokens`` false) is its content
    unchanged, and no messages the empty string. Otherwise each non-empty message
    becomes ``Role: content`` (role capitalised), joined by newlines, then
    ``\\nAssistant:`` is appended unless ``do_continue``. ``include_system=False``
    leaves system messages out.

    >>> format_prompt([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> format_prompt(
    ...     [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    ... )
    'System: Be brief\\nUser: Hi\\nAssistant:'
    """
    if not add_special_tokens and len(messages) <= 1:
        return str(messages[0]["content"]) if messages else ""
    formatted = "\n".join(
        f"{m['role'].capitalize()}: {m['content']}"
        for m in messages
        if m["content"].strip() and (include_system or m["role"] not in ("system", "developer"))
    )
    return formatted if do_continue else f"{formatted}\nAssistant:"


def build_prompt(messages: object, **options: bool) -> str:
    """Validate, format, and check the size limit: the prompt a chat sends."""
    prompt = format_prompt(validate_messages(messages), **options)
    if not prompt.strip():
        raise InvalidInputError("the messages hold no text: every content is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInputError(
            f"the prompt is {len(prompt):,} characters, over the limit of {MAX_PROMPT_CHARS:,}: "
            "shorten or drop earlier messages"
        )
    return prompt
