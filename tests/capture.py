"""Reading the raw answers of the genuine plugin (tests/captures/*.http): status line,
headers and body byte for byte; GET captures start with their request line.

:func:`serve_raw` replays such bytes from a real loopback server, so a client
meets them exactly as the genuine plugin sent them: status line, header order
and spelling, a body ended by closing the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent / "captures"


@dataclass
class Capture:
    request_line: str | None
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes = field(default=b"", repr=False)

    @property
    def host(self) -> str:
        """The ``host:port`` the capture was recorded at (its ``Host`` header)."""
        return next(v for k, v in self.headers if k.lower() == "host")

    def replayed(self, host: str) -> bytes:
        """The answer as captured, byte for byte, recorded at ``host`` instead."""
        return self.raw.replace(self.host.encode(), host.encode())


def capture(name: str) -> Capture:
    raw = (CAPTURES / name).read_bytes()
    request_line = None
    if not raw.startswith(b"HTTP/"):
        first, raw = raw.split(b"\n", 1)
        request_line = first.decode()
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = [(k, v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
    return Capture(request_line, lines[0], headers, body, raw)


@dataclass
class Request:
    """One request as the raw server read it."""

    method: str
    target: str
    #: lower-case names
    headers: dict[str, str]
    body: bytes


@dataclass
class RawServer:
    url: str
    host: str
    requests: list[Request] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve_raw(respond: Callable[[Request, str], bytes]) -> AsyncIterator[RawServer]:
    """A loopback server writing exactly the bytes ``respond(request, host)`` returns,
    then closing the connection, as the PHP server of the captures does."""
    server_info = RawServer("", "")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in lines[1:] if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, target, headers, body)
            server_info.requests.append(request)
            writer.write(respond(request, server_info.host))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server_info.host = f"127.0.0.1:{port}"
    server_info.url = f"http://{server_info.host}"
    try:
        yield server_info
    finally:
        server.close()
        await server.wait_closed()


def raw_reply(status: str, body: bytes, content_type: str = "text/html; charset=UTF-8") -> bytes:
    """A minimal close-delimited answer, for the replies no capture holds."""
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: {content_type}\r\n\r\n".encode()
        + body
    )
