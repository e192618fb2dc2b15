"""Make the independent measurement helper importable as ``measure`` for the tests in this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
