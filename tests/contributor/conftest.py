"""Fixtures for the contributor tests (helpers: contrib.py)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # contrib.py, the helpers
    sys.path.insert(0, str(HERE))

from contrib import SMALL_SYNTH  # noqa: E402


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Shrink the synthetic presets' default sizes, so the runner's tasks generate in seconds."""
    from ecg_data.synthetic import presets

    for name, n in SMALL_SYNTH.items():
        monkeypatch.setitem(presets.PRESETS, name, dataclasses.replace(presets.PRESETS[name], default_n=n))
    return SMALL_SYNTH
