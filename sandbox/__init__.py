"""A local imitation of a WordPress "ChatGPT Free" site running the AI Power chat plugin.

It answers like the genuine plugin does (see ``/work/shared/PROTOCOL.md`` and
``tests/captures/``) in either generation — legacy (1.x, ``wpaicg``) or aipkit
(2.x) — behind an optional Cloudflare-like edge (JavaScript challenge, hard
block, rate limit), with faults on demand. It imports only the standard library
and aiohttp, and shares no code with the client it tests.

Example::

    import sandbox

    async with sandbox.running(generation="legacy", challenge=False) as site:
        print(site.url, site.nonce())
        site.config.streaming = False          # applies to the next request
        print(site.hits["admin-ajax:wpaicg_chat_shortcode_message"])

Run ``python -m sandbox --help`` to serve one by hand.
"""

from ._config import SiteConfig
from ._server import running, serve_in_thread
from ._site import Site

__all__ = ["Site", "SiteConfig", "running", "serve_in_thread"]
