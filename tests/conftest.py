"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent (a user's fresh clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ECG_SHARED_DIR", REPO.parent / "shared"))

# Two cores on our machines: keep each test single-threaded so xdist workers do not oversubscribe.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test session writes caches under a temp dir, never into the user's ~/.cache."""
    if "ECG_CACHE_KEEP" not in os.environ:
        monkeypatch.setenv("ECG_CACHE", str(tmp_path_factory.getbasetemp() / "ecg-cache"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not present at {SHARED} (a fresh clone has no real data samples)")
    return SHARED


@pytest.fixture(scope="session")
def ptbxl500(shared_dir: Path) -> Path:
    root = shared_dir / "data" / "ptbxl-500"
    if not (root / "ptbxl_database.csv").is_file():
        pytest.skip(f"PTB-XL sample not found under {root}")
    return root


@pytest.fixture(scope="session")
def cinc_sample(shared_dir: Path) -> Path:
    root = shared_dir / "data" / "cinc2021-sample"
    if not root.is_dir():
        pytest.skip(f"CinC 2021 sample not found under {root}")
    return root


@pytest.fixture
def bert_from_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Replace the hub loader by a BERT-base of the given vocabulary (fast tokenizer with that many tokens): paper-size
    text towers on the ``meta`` device, nothing downloaded (tests/baselines/test_paper_counts.py, the step benchmarks)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    import ecg_encoders.text.hf as hf

    def use(vocab: int, max_positions: int = 512) -> None:
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(vocab - 5)]

        def load(name, *, causal, local_files_only=None):
            tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
            # a causal tower gets MELP's [BOS] (one more row, as resize_token_embeddings gives)
            cfg = BertConfig(vocab_size=vocab + int(causal), max_position_embeddings=max_positions, is_decoder=causal)
            return tok, BertModel(cfg)

        monkeypatch.setattr(hf, "load_tokenizer_and_model", load)

    return use
