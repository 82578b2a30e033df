"""Reading the raw answers of the genuine plugin (tests/captures/*.http): status line,
headers and body byte for byte; GET captures start with their request line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent / "captures"


@dataclass
class Capture:
    request_line: str | None
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes


def capture(name: str) -> Capture:
    raw = (CAPTURES / name).read_bytes()
    request_line = None
    if not raw.startswith(b"HTTP/"):
        first, raw = raw.split(b"\n", 1)
        request_line = first.decode()
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = [(k, v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
    return Capture(request_line, lines[0], headers, body)
