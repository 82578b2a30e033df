"""Writing a chat stream to the socket, with the faults a real network produces.

Both generations describe their reply as a list of ``Frame``s (SSE events, the
preamble, the legacy trailing JSON); ``send_stream`` writes them and applies the
site's pacing and fault knobs: ``first_byte_delay``, ``chunk_delay``,
``wire_chunk`` (arbitrary splits, mid-event and mid-character),
``drop_after_bytes`` (connection aborted), ``garbage_lines`` (non-data SSE lines)
and ``stall_after_deltas`` (silence on an open connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from ._site import Site

# Lines a robust SSE parser must skip: a comment, a reconnection hint, an event id.
GARBAGE_HEAD = b": keepalive\n\nretry: 100\n\nid: 7\n\n"

# Longer than aiohttp's 64 KiB readline limit: a parser reading line by line with
# StreamReader.readline() fails here, one that buffers bytes itself does not.
LONG_COMMENT_BYTES = 100_000


def _garbage_tail() -> bytes:
    """A colon-less line of printable text (a field with an empty value, ignored by
    SSE), an over-long comment, and a comment ended CRLF-style."""
    rng = random.Random(7)  # deterministic, so runs are comparable
    letters = string.ascii_letters + string.digits + " .,;!?#%&*()[]{}+=~^|<>"
    noise = "".join(rng.choice(letters) for _ in range(120)).strip()
    # Never let the noise read as a field SSE would act on.
    noise = "zz " + noise
    long_comment = b": " + b"x" * (LONG_COMMENT_BYTES - 2)
    return noise.encode() + b"\n\n" + long_comment + b"\n\n" + b": crlf comment\r\n\r\n"


@dataclass(frozen=True)
class Frame:
    """A piece of a chat reply; ``delta`` marks the ones carrying answer text."""

    data: bytes
    delta: bool = False


def refused_after(frames: Sequence[Frame], deltas: int, refusal: Sequence[Frame]) -> list[Frame]:
    """``frames`` up to their ``deltas``-th text delta, then ``refusal`` instead of the rest."""
    kept: list[Frame] = []
    seen = 0
    for frame in frames:
        if frame.delta:
            if seen >= deltas:
                break
            seen += 1
        kept.append(frame)
    return kept + list(refusal)


class _Dropped(Exception):
    """The connection was aborted on purpose (``drop_after_bytes``)."""


class _Wire:
    def __init__(self, request: web.Request, response: web.StreamResponse, site: Site) -> None:
        self._request = request
        self._response = response
        self._config = site.config
        self.sent = 0

    async def write(self, data: bytes) -> None:
        drop = self._config.drop_after_bytes
        if drop is not None and self.sent + len(data) >= drop:
            await self._write(data[: drop - self.sent])
            await self._request.writer.drain()
            transport = self._request.transport
            if transport is not None:
                # abort(), not close(): no orderly end of the response, just a dead socket.
                transport.abort()
            raise _Dropped
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        size = self._config.wire_chunk
        if size is None:
            if data:
                await self._response.write(data)
                self.sent += len(data)
            return
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            await self._response.write(piece)
            self.sent += len(piece)
            # Hand each piece to the kernel and let the loop run, so the peer
            # really sees separate reads instead of one coalesced buffer.
            await self._request.writer.drain()
            await asyncio.sleep(0)


async def _answered(request: web.Request, site: Site) -> None:
    """The answer is out: count it, then hold the body's end for ``end_delay``."""
    site.answered += 1
    delay = site.config.end_delay
    if delay > 0:
        # Push the answer to the peer now: the delay is between it and the end.
        await request.writer.drain()
        # Bounded by the server's shutdown too: a stopping site does not wait it out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(site.closing.wait(), delay)


async def send_stream(
    request: web.Request, response: web.StreamResponse, site: Site, frames: Sequence[Frame]
) -> web.StreamResponse:
    """Prepare ``response`` and write ``frames`` with the site's pacing and faults."""
    config = site.config
    if config.first_byte_delay > 0:
        await asyncio.sleep(config.first_byte_delay)
    if config.abort_before_reply and request.transport is not None:
        request.transport.abort()
        return response
    await response.prepare(request)
    # Headers go out now, not coalesced with the first body bytes, so a client sees
    # the status even if the body is delayed, stalled or dropped at byte 0.
    request.writer.send_headers()
    wire = _Wire(request, response, site)
    deltas_sent = 0
    # The answer's last event: the last frame that ends an SSE event (legacy's
    # trailing JSON ends in no blank line). end_delay comes after it.
    last_event = max((i for i, f in enumerate(frames) if f.data.endswith(b"\n\n")), default=-1)
    try:
        for index, frame in enumerate(frames):
            if frame.delta:
                stall = config.stall_after_deltas
                if stall is not None and deltas_sent >= stall:
                    # Silent but open, until the client gives up or the server stops.
                    await site.closing.wait()
                    return response
                if deltas_sent and config.chunk_delay > 0:
                    await asyncio.sleep(config.chunk_delay)
            await wire.write(frame.data)
            if frame.delta:
                deltas_sent += 1
            if config.garbage_lines and index + 1 < len(frames):
                if index == 0:
                    await wire.write(GARBAGE_HEAD)
                elif frame.delta and deltas_sent == 1:
                    await wire.write(_garbage_tail())
            if index == last_event:
                await _answered(request, site)
        await response.write_eof()
        site.ended += 1
    except _Dropped:
        pass
    except asyncio.CancelledError:
        # The client hung up mid-answer (aiohttp cancels the handler): tests see it here.
        site.hits["stream_hung_up"] += 1
        raise
    return response
