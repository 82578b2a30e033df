"""An incremental Server-Sent Events parser: bytes in, events out.

Follows the WHATWG event-stream rules where they matter for this site:
lines end in ``\\n``, ``\\r\\n`` or ``\\r``; ``field:value`` with at most one
space stripped after the colon (``data:x`` and ``data: x`` both work); lines
starting with ``:`` are comments; several ``data`` lines join with ``\\n``; a
blank line dispatches the event; an unfinished event at end of stream is
dropped (which is exactly what keeps legacy's trailing JSON out of the answer).

Reads may split anything: an event, a line, a ``\\r\\n`` pair, a UTF-8
character. Memory is bounded: a line longer than ``max_line`` bytes is
skipped, not buffered (a hostile or broken server cannot make us hold it).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

__all__ = ["DEFAULT_MAX_LINE", "Event", "SSEParser"]

log = logging.getLogger(__name__)

#: A single SSE line longer than this is dropped. Real events here are a few
#: hundred bytes; the 4096-space aipkit preamble is the longest legitimate line.
DEFAULT_MAX_LINE = 1 << 20


class Event(NamedTuple):
    """One dispatched event. ``event`` is ``""`` when the stream named none.

    A named tuple, not a frozen dataclass: one is made per delta, and a tuple
    is several times cheaper to build.
    """

    data: str
    event: str = ""
    id: str | None = None


#: An Event made without NamedTuple's keyword-handling constructor (a Python
#: function): the fast path makes one per delta.
_new = tuple.__new__


class SSEParser:
    """Feed it the body as it arrives; it returns the events completed so far.

    >>> p = SSEParser()
    >>> p.feed(b"data: he")
    []
    >>> p.feed(b"llo\\n\\n")
    [Event(data='hello', event='', id=None)]
    """

    __slots__ = ("_buf", "_data", "_event", "_id", "_max_line", "_skipping", "skipped_lines")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._max_line = max_line
        self._skipping = False  # inside an over-long line: drop bytes up to its end
        self.skipped_lines = 0

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A lone trailing \r may be the first half of \r\n: keep it back.
            hold = buf.endswith(b"\r")
            if hold:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold:
                return self._lines(buf + b"\r")
        if self._data or self._event or self._skipping:
            return self._lines(buf)  # inside an event: line by line until it ends
        return self._blocks(buf)

    def _blocks(self, buf: bytes) -> list[Event]:
        """The common case, a read that starts between two events: split it into
        events, take the usual shapes (one ``data: …`` line, or ``event: …`` then
        ``data: …``, or a comment) as they are, and hand anything else to the line
        rules (:meth:`_lines`), which give exactly the events they would have
        given the whole read. What follows the last complete event goes there too.
        """
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        events: list[Event] = []
        append = events.append
        max_line = self._max_line
        ident = self._id
        for block in blocks:
            # ``10 not in block``: no b"\n" (an int is looked for with memchr,
            # several times faster than a one-byte bytes; this runs per event).
            if block[:6] == b"data: ":
                if 10 not in block and len(block) <= max_line:
                    append(_new(Event, (block[6:].decode("utf-8", "replace"), "", ident)))
                    continue
            elif block[:7] == b"event: ":
                name, _, data = block.partition(b"\n")
                if data[:6] == b"data: " and 10 not in data and len(block) <= max_line:
                    text = data[6:].decode("utf-8", "replace")
                    append(_new(Event, (text, name[7:].decode("utf-8", "replace"), ident)))
                    continue
            elif block[:1] == b":" and 10 not in block and len(block) <= max_line:
                continue  # a comment (aipkit's 4096-space preamble)
            events += self._lines(block + b"\n\n")
            ident = self._id
        if rest:
            events += self._lines(rest)
        else:
            self._buf = b""
        return events

    def _lines(self, buf: bytes) -> list[Event]:
        """The line rules, for ``buf`` with its line ends made ``\\n`` (bar a held-back ``\\r``)."""
        lines = buf.split(b"\n")
        rest = lines.pop()
        events: list[Event] = []
        if self._skipping and lines:
            self._skipping = False  # the over-long line ends at the first line break
            del lines[0]
        max_line = self._max_line
        data = self._data
        for line in lines:
            # Inline fast paths for the two lines nearly every event is made of;
            # everything else goes through the general field handling.
            if not line:
                if data:
                    events.append(Event("\n".join(data), self._event, self._id))
                    data = self._data = []
                self._event = ""
            elif line[:6] == b"data: " and len(line) <= max_line:
                data.append(line[6:].decode("utf-8", "replace"))
            elif len(line) > max_line:
                self._skip()
            else:
                self._line(line)
                data = self._data
        held = rest[-1:] == b"\r"  # held back: maybe the line's end, not part of it
        if len(rest) - held > max_line or self._skipping:
            if not self._skipping:
                self._skip()
            self._skipping = True
            rest = b"\r" if held else b""  # the line is dropped; its end still counts
        self._buf = rest
        return events

    def end(self) -> list[Event]:
        """Call at end of stream: a held-back ``\r`` still ends its line.

        Whatever event is left unfinished after that is dropped, per the spec.
        """
        if self._buf.endswith(b"\r"):
            return self.feed(b"\n")
        return []

    def _skip(self) -> None:
        self.skipped_lines += 1
        log.debug("skipped an SSE line longer than %d bytes", self._max_line)

    def _line(self, raw: bytes) -> None:
        """A non-blank line other than ``data: …`` (blank lines are handled in :meth:`feed`)."""
        if raw[0] == 0x3A:  # ':' comment (also aipkit's 4096-space preamble)
            return
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        # "retry" and unknown fields (or junk without a colon) are ignored, per the spec.
