"""Small real proxies on loopback for tests: HTTP (absolute-form and CONNECT) and
SOCKS5, both with username/password, counting what goes through them.

``hosts`` gives a proxy names of its own (``{"chatgptfree.test": "127.0.0.1"}``):
it resolves them itself, while the client cannot (the name is in no DNS), as on
a restricted network where only the proxy's resolver knows the site. ``targets``
records each target as the client named it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class ProxyServer:
    user: str
    password: str
    connections: int = 0
    refused: int = 0
    targets: list[str] = field(default_factory=list)
    port: int = 0
    hosts: dict[str, str] = field(default_factory=dict)

    async def open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to a target, resolving the proxy's own names first."""
        return await asyncio.open_connection(self.hosts.get(host.lower(), host), port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _relay(
    cr: asyncio.StreamReader,
    cw: asyncio.StreamWriter,
    ur: asyncio.StreamReader,
    uw: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_pipe(cr, uw), _pipe(ur, cw))


@contextlib.asynccontextmanager
async def http_proxy(
    user: str = "alice", password: str = "s3cr3t-pw", hosts: dict[str, str] | None = None
) -> AsyncIterator[ProxyServer]:
    state = ProxyServer(user, password, hosts=dict(hosts or {}))
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            head = await cr.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            cw.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [ln for ln in lines[1:] if ln]
        auth = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in headers
                if ln.lower().startswith("proxy-authorization:")
            ),
            None,
        )
        if auth != expected:
            state.refused += 1
            cw.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="t"\r\nContent-Length: 0\r\n\r\n'
            )
            await cw.drain()
            cw.close()
            return
        state.connections += 1
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            state.targets.append(target)
            ur, uw = await state.open(host, int(port))
            cw.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await cw.drain()
            await _relay(cr, cw, ur, uw)
            return
        # absolute-form: http://host:port/path -> origin-form to the target
        rest = target.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        state.targets.append(hostport)
        ur, uw = await state.open(host, int(port or 80))
        kept = [ln for ln in headers if not ln.lower().startswith("proxy-")]
        uw.write(
            f"{method} /{path} {version}\r\n".encode("latin-1")
            + "".join(f"{ln}\r\n" for ln in kept).encode("latin-1")
            + b"\r\n"
        )
        await _relay(cr, cw, ur, uw)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


@contextlib.asynccontextmanager
async def socks5_proxy(
    user: str = "bob", password: str = "s0cks-pw", hosts: dict[str, str] | None = None
) -> AsyncIterator[ProxyServer]:
    state = ProxyServer(user, password, hosts=dict(hosts or {}))

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ver, n = await cr.readexactly(2)
            methods = await cr.readexactly(n)
            if ver != 5 or 2 not in methods:
                cw.write(b"\x05\xff")
                return
            cw.write(b"\x05\x02")  # username/password (RFC 1929)
            _, ulen = await cr.readexactly(2)
            uname = (await cr.readexactly(ulen)).decode()
            (plen,) = await cr.readexactly(1)
            pw = (await cr.readexactly(plen)).decode()
            if (uname, pw) != (user, password):
                state.refused += 1
                cw.write(b"\x01\x01")
                return
            cw.write(b"\x01\x00")
            _, _cmd, _, atyp = await cr.readexactly(4)
            if atyp == 1:
                host = ".".join(str(b) for b in await cr.readexactly(4))
            elif atyp == 3:
                (ln,) = await cr.readexactly(1)
                host = (await cr.readexactly(ln)).decode()
            else:
                cw.write(b"\x05\x08\x00\x01" + bytes(6))
                return
            (port,) = struct.unpack("!H", await cr.readexactly(2))
            state.connections += 1
            state.targets.append(f"{host}:{port}")
            ur, uw = await state.open(host, port)
            cw.write(b"\x05\x00\x00\x01" + bytes(4) + struct.pack("!H", 0))
            await cw.drain()
            await _relay(cr, cw, ur, uw)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                cw.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
