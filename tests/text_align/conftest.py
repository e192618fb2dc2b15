"""Make the stand-in modules importable by name (also from spawned DDP workers, which inherit sys.path)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
