"""The command-line tools and the server: uses of the library, not part of it.

``__main__`` (``python -m provider``: chat), ``refresh`` (warm-up, export and
import of credentials), ``health`` (the CI check), ``serve/`` (the
OpenAI-compatible endpoint), and ``cli`` (what they share: options, the
``--sandbox`` site, logging, exit codes). Each is reached through a thin entry
module at its old place (``python -m provider.refresh`` and so on), and the
console scripts in pyproject.toml point here.
"""
