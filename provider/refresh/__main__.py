"""``python -m provider.refresh``: see :mod:`provider.commands.refresh`."""

import sys

from provider.commands.refresh import main

if __name__ == "__main__":
    sys.exit(main())
