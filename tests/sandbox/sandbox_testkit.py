"""Helpers for the sandbox's own tests: reading the captures, a small spec-following
SSE parser and markup extraction with the standard library only.

Deliberately independent of ``provider``/``scraper``: these tests check the
imitation against the captures, not against the client's understanding of them.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp

UA_A = "Mozilla/5.0 (X11; Linux x86_64) SandboxTest/1.0 Chrome/156.0.0.0 Safari/537.36"
UA_B = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) OtherAgent/2.0 Chrome/120.0.0.0 Safari/537.36"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reads: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode()


async def fetch(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Reply:
    """One request; the body read as it arrives, counting the reads."""
    async with http.request(method, url, allow_redirects=False, **kwargs) as resp:
        chunks = [chunk async for chunk in resp.content.iter_any()]
        headers = [(k.decode(), v.decode()) for k, v in resp.raw_headers]
        return Reply(resp.status, headers, b"".join(chunks), len(chunks))


def header_names(headers: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in headers]


def comparable_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers with the per-request values (Host, Date) blanked."""
    return [(k, "" if k.lower() in ("host", "date") else v) for k, v in headers]


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    fields: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def sse_events(body: bytes) -> list[Event]:
    """Events of an SSE body per the HTML spec (comments, unknown fields and
    colon-less lines ignored; LF, CR or CRLF line ends)."""
    events: list[Event] = []
    current = Event()
    data_lines: list[str] = []
    for line in re.split(r"\r\n|\r|\n", body.decode()):
        if line == "":
            if data_lines:
                current.data = "\n".join(data_lines)
                events.append(current)
            current, data_lines = Event(), []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        current.fields.append(name)
        if name == "event":
            current.event = value
        elif name == "data":
            data_lines.append(value)
        elif name == "id":
            current.id = value
    return events


def split_legacy(body: bytes) -> tuple[bytes, dict[str, Any]]:
    """A legacy stream: (the SSE part up to and with [DONE], the trailing JSON)."""
    marker = b"data: [DONE]\n\n"
    sse, sep, tail = body.partition(marker)
    assert sep, "no [DONE] in the legacy stream"
    return sse + marker, json.loads(tail)


def shape(value: Any) -> Any:
    """The structure of a JSON value: dict keys (ordered) and leaf types."""
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def legacy_attrs(page: str, css_class: str = "wpaicg-chat-shortcode") -> dict[str, str]:
    """The attributes of the first ``<div class="<css_class>" …>`` (spaces around = allowed)."""
    match = re.search(rf'<div class="{re.escape(css_class)}"(.*?)>', page, re.S)
    assert match, f"no {css_class} element"
    pairs = re.findall(r'([\w-]+)\s*=\s*"([^"]*)"', match.group(1))
    return {name: html.unescape(value) for name, value in pairs}


def aipkit_configs(page: str, holder: str = "aipkit_chat_container") -> list[dict[str, Any]]:
    """Decoded ``data-config`` of every element whose id starts with ``holder``."""
    configs = []
    for match in re.finditer(rf"<div [^>]*id=\"{holder}_\d+\"[^>]*>", page):
        attr = re.search(r"data-config='([^']*)'", match.group(0))
        if attr:
            configs.append(json.loads(html.unescape(attr.group(1))))
    return configs


def form(**fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for key, value in fields.items():
        data.add_field(key, value)
    return data
