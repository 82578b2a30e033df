"""``python -m provider "question"``: the chat command, in :mod:`provider.commands.__main__`."""

import sys

from provider.commands.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
