"""Entry point for the drivers: ``python drive.py <driver> SUBCOMMAND [N ...]`` (see _common.py)."""

import sys

from _common import main

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
