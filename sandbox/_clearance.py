"""``cf_clearance`` tokens: proof that a browser solved the challenge.

Like Cloudflare's, the token is bound to the User-Agent and the client address
that solved the challenge, and it expires. Here it is
``<signature>-<issued unix time>-1.2.1.1-<random>`` where the signature is an
HMAC over (issued, random, User-Agent, address) with a per-site secret; the
lifetime is checked against the site's *current* ``clearance_ttl``, so a test can
shorten it on a live site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(secret: bytes, issued: int, rand: str, user_agent: str, address: str) -> str:
    message = f"{issued}|{rand}|{user_agent}|{address}".encode()
    # Hex, so the signature never contains the "-" that separates the fields.
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:43]


def issue(secret: bytes, user_agent: str, address: str, now: float) -> str:
    """A fresh token for this User-Agent and address."""
    issued = int(now)
    rand = _b64(secrets.token_bytes(18))
    return f"{_sign(secret, issued, rand, user_agent, address)}-{issued}-1.2.1.1-{rand}"


def is_valid(
    secret: bytes, token: str | None, user_agent: str, address: str, now: float, ttl: float
) -> bool:
    """True when ``token`` was issued by this site to this UA and address and is still fresh."""
    if not token:
        return False
    parts = token.split("-", 1)
    if len(parts) != 2:
        return False
    signature, rest = parts
    issued_text, sep, rand = rest.partition("-1.2.1.1-")
    if not sep or not issued_text.isdigit():
        return False
    issued = int(issued_text)
    expected = _sign(secret, issued, rand, user_agent, address)
    if not hmac.compare_digest(expected, signature):
        return False
    return issued <= now < issued + ttl
