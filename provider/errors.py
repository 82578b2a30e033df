"""The public home of the project's error tree (defined in :mod:`scraper.errors`,
the lowest layer, because the scraper and the provider both raise it).

Catch :class:`ProviderError` for all of them; :mod:`scraper.errors` documents
the tree and when each class is raised.
"""

from scraper import errors as _errors
from scraper.errors import *  # noqa: F403

__all__ = [name for name in _errors.__all__ if name != "redact_url"]
