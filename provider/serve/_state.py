"""What every handler of one app shares."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from provider._provider import ChatgptFree
from provider.serve._metrics import ServerMetrics


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
    metrics: ServerMetrics = field(default_factory=ServerMetrics)

    def __post_init__(self) -> None:
        self.metrics.count_in_flight(lambda: self.in_flight)


STATE = web.AppKey("provider.serve.state", ServerState)

