"""Makes the fixture writers in ``dr_fixtures.py`` importable (the repo runs pytest with
``--import-mode=importlib``, where test modules cannot import their siblings) and exposes its fixtures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dr_fixtures import _templates, cpsc_original_root, cpsc_root, csn_root, mimic_root, ptbxl_root  # noqa: E402,F401
