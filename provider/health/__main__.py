"""``python -m provider.health``: see :mod:`provider.commands.health`."""

import sys

from provider.commands.health import main

if __name__ == "__main__":
    sys.exit(main())
