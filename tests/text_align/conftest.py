"""Make the stand-in modules importable by name (also from spawned DDP workers, which inherit sys.path),
and build a tiny offline BERT directory (the real HFTextEncoder path, no hub access)."""

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. abnormal ecg.",
    "sinus bradycardia. left bundle branch block.",
    "sinus tachycardia. st elevation in anterior leads. abnormal ecg.",
]


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
        max_positions=64,
    )
