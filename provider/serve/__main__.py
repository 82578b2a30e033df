"""``python -m provider.serve``."""

import sys

from provider.serve._command import main

if __name__ == "__main__":
    sys.exit(main())
