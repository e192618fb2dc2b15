"""Fixtures for the baselines' tests: a tiny offline BERT directory, and small synthetic corpora."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (REPO, HERE):  # `baselines`/`benchmarks` are top-level packages; bl_e2e is a helper module here
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation with rapid ventricular response. Abnormal ECG.",
    "Sinus bradycardia. Left bundle branch block. Abnormal ECG.",
    "Sinus tachycardia. ST depression, consider ischemia. Abnormal ECG.",
]

#: synthetic corpus sizes for the end-to-end tests: small enough for seconds, big enough that every split exists
SMALL_SYNTH = {"synth-mimic": 96, "synth-ptbxl": 160, "synth-cpsc2018": 120}


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ecg_encoders.text.offline import init_text_model_dir

    return init_text_model_dir(
        REPORTS * 5,
        tmp_path_factory.mktemp("bert") / "tiny-bert",
        vocab_size=120,
        layers=2,
        width=32,
        heads=2,
        ffn_dim=64,
        max_positions=200,
    )


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Shrink the synthetic presets' default sizes, so the runner's real tasks generate in seconds."""
    from ecg_data.synthetic import presets

    for name, n in SMALL_SYNTH.items():
        monkeypatch.setitem(presets.PRESETS, name, dataclasses.replace(presets.PRESETS[name], default_n=n))
    return SMALL_SYNTH
