"""`python -m adiff.train --preset NAME`: the preset training command (it lives in adiff.cli.train)."""

import sys

from .cli.train import main

if __name__ == "__main__":
    sys.exit(main())
