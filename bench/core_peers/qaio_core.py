"""qaio's own rows, straight from bench/core.py: ``python qaio_core.py JOBS FOLDER`` runs one round of
``core.measure`` (memory:// and sqlite://, worker in the same process) and prints its JSON line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core  # bench/core.py, importable once bench/ is on the path

if __name__ == "__main__":
    results = core.measure(int(sys.argv[1]), 1, Path(sys.argv[2]))
    os.write(1, (json.dumps({"bench": results}) + "\n").encode())
