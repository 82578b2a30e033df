"""A TCP relay on loopback standing in for the network between a client and a site.

It forwards bytes both ways, unchanged (TLS passes through it end to end), and can:

* add latency: every piece of data is held ``rtt / 2`` in each direction, so a
  round trip costs ``rtt`` while the data keeps flowing (bandwidth is not capped);
* count connections (``connections``), which is how tests and benchmarks see
  whether a client reused one;
* close idle connections the way servers do, at the worst moment: a connection
  that sat idle at least ``idle_close`` seconds is closed when the client's next
  bytes arrive, unanswered — the keep-alive race, made to happen every time.

Used by ``python -m bench`` (the WAN case) and by the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Relay:
    """A running relay: ``port`` to connect to, ``connections`` accepted so far."""

    port: int = 0
    connections: int = 0
    idle_closed: int = 0
    rtt: float = 0.0
    idle_close: float | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"


class _Link:
    """One client connection and its upstream, with the time it last carried data."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.last = time.monotonic()
        self.closed = asyncio.Event()


async def _pump(
    link: _Link,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    from_client: bool,
) -> None:
    delay = link.relay.rtt / 2
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        try:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:  # the other side is gone: drop the link
            link.closed.set()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            now = time.monotonic()
            idle = link.relay.idle_close
            if from_client and idle is not None and now - link.last >= idle:
                # The server gave up on this connection just as the client reused it.
                link.relay.idle_closed += 1
                break
            link.last = now
            queue.put_nowait((now + delay, data))
        else:
            queue.put_nowait((time.monotonic() + delay, b""))
            await sender
            return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        link.last = time.monotonic()
        if not sender.done():
            sender.cancel()
    link.closed.set()  # an idle close or a broken side: drop both directions now


async def _handle(
    relay: Relay,
    upstream: tuple[str, int],
    cr: asyncio.StreamReader,
    cw: asyncio.StreamWriter,
) -> None:
    relay.connections += 1
    link = _Link(relay)
    try:
        ur, uw = await asyncio.open_connection(*upstream)
    except OSError:
        cw.close()
        return
    pumps = [
        asyncio.create_task(_pump(link, cr, uw, from_client=True)),
        asyncio.create_task(_pump(link, ur, cw, from_client=False)),
    ]
    closer = asyncio.create_task(link.closed.wait())
    waiting: set[asyncio.Task[object]] = {closer, *pumps}
    try:
        while not closer.done() and not all(p.done() for p in pumps):
            _, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [*pumps, closer]:
            task.cancel()
        for w in (cw, uw):
            with contextlib.suppress(Exception):
                w.close()


@contextlib.asynccontextmanager
async def relay(
    upstream_port: int,
    *,
    rtt: float = 0.0,
    idle_close: float | None = None,
    upstream_host: str = "127.0.0.1",
) -> AsyncIterator[Relay]:
    """Relay 127.0.0.1:<free port> to ``upstream_host:upstream_port``."""
    state = Relay(rtt=rtt, idle_close=idle_close)

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        state._tasks.add(task)
        try:
            await _handle(state, (upstream_host, upstream_port), cr, cw)
        except asyncio.CancelledError:
            pass  # the relay is stopping: its connections go with it
        finally:
            state._tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        async with server:
            yield state
    finally:
        for task in list(state._tasks):
            task.cancel()
