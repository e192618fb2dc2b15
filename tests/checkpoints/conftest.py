"""Fixtures for the checkpoint tests: repository imports, the baselines' small synthetic corpora and tiny BERT."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for p in (REPO, REPO / "tests" / "baselines"):  # `benchmarks`/`baselines` packages; bl_e2e helpers
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

SMALL_SYNTH = {"synth-mimic": 96, "synth-ptbxl": 160, "synth-cpsc2018": 120}
REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation. Abnormal ECG.",
    "Sinus bradycardia. Left bundle branch block.",
]


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    from ecg_data.synthetic import presets

    for name, n in SMALL_SYNTH.items():
        monkeypatch.setitem(presets.PRESETS, name, dataclasses.replace(presets.PRESETS[name], default_n=n))
    return SMALL_SYNTH


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
