"""``python -m provider.refresh``: the warm-up command lives in :mod:`provider.commands.refresh`."""

from provider.commands.refresh import main

__all__ = ["main"]
