"""The chat form the plain-HTTP client encodes itself (``scraper.request.encode_form``):
byte for byte what ``urlencode`` — and so aiohttp's own form encoding — makes."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.request import encode_form

# Any text a prompt, a URL or an id can hold (lone surrogates cannot be sent at all).
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_FORM_CHARS = st.sampled_from(list("aZ09_.-~ +&=%/?#:é😀\r\n\t\"'"))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_TEXT | st.text(_FORM_CHARS, max_size=8), _TEXT | st.text(_FORM_CHARS)))
def test_the_form_is_what_urlencode_makes(fields: dict[str, str]) -> None:
    body = encode_form(fields)
    assert body == urlencode(fields).encode("ascii")
    # and a server reads back every field as it was given, in order
    assert parse_qsl(body.decode("ascii"), keep_blank_values=True) == list(fields.items())
