"""``python -m provider.serve``: see :mod:`provider.commands.serve`."""

import sys

from provider.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())
