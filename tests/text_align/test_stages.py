"""MELP stage 0 (wav2vec2 + CMSC) and stage 1 (MLM cardiology LM) on tiny inputs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ecg_text_align.lm import mlm_perplexity, train_text_lm
from ecg_text_align.melp import MELP
from ecg_text_align.melp_stage0 import MELPStage0, cmsc_loss

TOWER = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}


def test_cmsc_loss_positive_pairs_are_same_record() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    aligned = cmsc_loss(a, a, torch.tensor(10.0), gather=False)
    swapped = cmsc_loss(a, a.flip(0), torch.tensor(10.0), gather=False)
    hand = math.log(1 + math.exp(-10.0))  # each row: [10, 0] with the positive at 10
    assert aligned.item() == pytest.approx(hand, abs=1e-6) and swapped.item() > 5


def test_stage0_step_and_tower_transfer_to_melp(tmp_path, tiny_bert_dir) -> None:
    torch.manual_seed(0)
    stage0 = MELPStage0(ecg_tower=TOWER, w2v_options={"mask_prob": 0.3, "mask_length": 4, "num_negatives": 5})
    assert stage0.encode_text is None  # ECG-only
    losses = stage0.compute_losses({"ecg": torch.randn(3, 12, 5000)})
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert stage0.ecg_tower.encoder.feature_extractor is stage0.w2v.encoder.feature_extractor
    ckpt = tmp_path / "s0.ckpt"
    torch.save({"state_dict": stage0.state_dict()}, ckpt)
    melp = MELP(
        ecg_tower=TOWER,
        ecg_tower_ckpt=str(ckpt),
        shared_dim=32,
        decoder_layers=1,
        decoder_heads=2,
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(tiny_bert_dir),
            "freeze_layers": 1,
            "max_length": 32,
        },
    )
    s0 = stage0.ecg_tower.state_dict()
    for k, v in melp.ecg_tower.state_dict().items():
        if k.startswith("encoder."):  # the wav2vec2 encoder carries over
            torch.testing.assert_close(v, s0[k])
    # stage 0 has no pooler at all (its CMSC embedding is mean of tokens -> Linear, as the original's stage 0;
    # unused parameters would break DDP); stage 2 builds its own poolers
    assert not any("caption" in k or "contrast" in k for k in s0)
    assert any("caption" in k for k in melp.ecg_tower.state_dict()) and any(
        "contrast" in k for k in melp.ecg_tower.state_dict()
    )


def test_stage1_mlm_from_scratch_learns_and_loads(tmp_path) -> None:
    from ecg_encoders.text.presets import build_text_preset

    texts = ["sinus rhythm. normal ecg.", "atrial fibrillation. abnormal ecg.", "sinus bradycardia. normal ecg."] * 10
    cfg = dict(layers=2, width=32, heads=2, ffn_dim=64, max_positions=64)
    untrained = train_text_lm(tmp_path / "lm0", texts, vocab_size=80, model_config=cfg, steps=1, batch_size=8, seed=0)
    out = train_text_lm(
        tmp_path / "lm", texts, vocab_size=80, model_config=cfg, steps=60, batch_size=8, lr=3e-3, warmup_steps=5, seed=0
    )
    prov = json.loads((out / "ecglang_text_model.json").read_text())
    assert prov["trained"] and prov["steps"] == 60 and prov["n_texts"] == 30
    assert mlm_perplexity(out, texts) < 0.5 * mlm_perplexity(untrained, texts)
    enc = build_text_preset("offline_default", path=out, max_length=32)  # the offline default text tower
    assert enc.encode(["sinus rhythm."]).pooled.shape == (1, 32)
    with pytest.raises(FileExistsError):
        train_text_lm(out, texts, steps=1)
