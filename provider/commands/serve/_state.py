"""What every handler of one app shares."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from provider._browsers import WarmBrowser
from provider._provider import ChatgptFree
from provider.commands.serve._metrics import ServerMetrics

#: A warm browser (browser transport) nobody chatted through for this long is closed.
BROWSER_IDLE_SECONDS = 300.0
#: A stored response's conversation (POST /v1/responses, previous_response_id) is
#: kept this long in the credential store, then dropped.
CONVERSATION_SECONDS = 3600.0


@dataclass
class ServerState:
    """What every handler of one app shares."""

    provider: type[ChatgptFree]
    api_key: str | None = None
    timeout: float = 120
    proxy: str | None = None
    started: float = field(default_factory=time.time)
    #: Upstream chats open right now (a client that hung up must bring it back down).
    in_flight: int = 0
    served: int = 0
    #: The browser transport's warm browsers: one per (site, proxy) while the site
    #: needs it, shared by concurrent chats, closed when idle or with the app.
    browsers: WarmBrowser | None = None
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    #: How long a stored Responses-API response can be continued (previous_response_id).
    conversation_seconds: float = CONVERSATION_SECONDS

    def __post_init__(self) -> None:
        self.metrics.count_in_flight(lambda: self.in_flight)


STATE = web.AppKey("provider.serve.state", ServerState)
