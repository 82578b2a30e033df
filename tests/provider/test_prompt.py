"""The prompt's shape at its edges (issue 27, survivors of the mutation tool on
provider/prompt.py): only a single message goes to the site as its bare content;
two messages already carry their roles; no messages at all make an empty prompt."""

from __future__ import annotations

from provider import format_prompt


def test_two_messages_are_formatted_with_their_roles() -> None:
    """Promise (format_prompt's docstring): only a single message is sent unchanged;
    from two on, each is ``Role: content`` and the prompt ends with ``Assistant:``."""
    msgs = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    assert format_prompt(msgs) == "System: Be brief\nUser: Hi\nAssistant:"


def test_no_messages_make_an_empty_prompt() -> None:
    """Promise (format_prompt's docstring): an empty list is the empty string, not a
    bare ``Assistant:`` cue (build_prompt then refuses it as holding no text)."""
    assert format_prompt([]) == ""
