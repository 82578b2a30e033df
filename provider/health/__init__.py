"""``python -m provider.health``: the health check lives in :mod:`provider.commands.health`."""

from provider.commands.health import main

__all__ = ["main"]
