"""The imitation's "model": a deterministic answer derived from the message.

Like the fake upstream the captures were recorded with, the answer is
``"You said: " + <last non-empty line of the message>``, so a test can predict it
from what it sent. Long answers (``answer_bytes``) pad that with fixed filler
full of multi-byte characters, so that splitting the wire exercises UTF-8 joins.
"""

from __future__ import annotations

PREFIX = "You said: "

# Deterministic filler: 1-, 2-, 3- and 4-byte UTF-8 characters.
FILLER = (
    " Café crème — naïve façade ✓ déjà vu 🙂 “quoted” text, Ünïcödé ✓ résumé — "
    "the quick brown fox jumps over the lazy dog 🙂 mañana ✓ Straße —"
)


def last_line(message: str) -> str:
    """The last non-empty line of ``message``, stripped ("" when there is none)."""
    for line in reversed(message.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def answer_text(message: str, answer_bytes: int | None = None) -> str:
    """The full answer the site will give to ``message``."""
    text = PREFIX + last_line(message)
    if answer_bytes is None:
        return text
    return _exact_bytes(text, answer_bytes)


def _exact_bytes(start: str, size: int) -> str:
    """``start`` padded (or cut) to exactly ``size`` UTF-8 bytes, never splitting a character."""
    out: list[str] = []
    used = 0
    for char in start:
        width = len(char.encode())
        if used + width > size:
            break
        out.append(char)
        used += width
    index = 0
    while used < size:
        char = FILLER[index % len(FILLER)]
        index += 1
        width = len(char.encode())
        if used + width > size:
            char, width = ".", 1  # one-byte filler always fits: the total comes out exact
        out.append(char)
        used += width
    return "".join(out)


def deltas(answer: str, delta_chars: int, long: bool) -> list[str]:
    """Split ``answer`` the way the captures' upstream did.

    Short echoes come as ``"You said: "``, the first two words and the rest
    (``"Hello legacy "``, ``"bot"``), as in every capture; long answers come in
    ``delta_chars``-character pieces.
    """
    if long or not answer.startswith(PREFIX):
        return [answer[i : i + delta_chars] for i in range(0, len(answer), delta_chars)]
    words = answer[len(PREFIX) :].split(" ")
    pieces = [PREFIX]
    if len(words) > 2:
        pieces += [" ".join(words[:2]) + " ", " ".join(words[2:])]
    else:
        pieces.append(" ".join(words))
    return [piece for piece in pieces if piece]
