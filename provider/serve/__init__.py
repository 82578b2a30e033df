"""``provider.serve``: the documented names (``running``, ``make_app``, …) of the
OpenAI-compatible endpoint, which lives in :mod:`provider.commands.serve`."""

from provider.commands.serve import *  # noqa: F403
from provider.commands.serve import __all__ as __all__
