"""The three MELP stages through the runner's stage contract on a 40-record synthetic corpus (2 steps each)."""

from __future__ import annotations

import pytest
import torch

from ecg_text_align.module import PretrainModule
from ecg_text_align.stages import ecg_stage0, melp_stage, text_lm_stage

PRETRAIN = {"name": "synth-mimic", "task": "synth_mimic", "suite": "synthetic", "n": 40, "root": None}
TRAINER = {"max_steps": 2, "max_epochs": 5, "checkpoint_every_n_steps": 1}
TOWER = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}


def test_stage1_stage0_stage2_chain(tmp_path) -> None:
    lm = text_lm_stage(run_dir=tmp_path / "lm", inputs={}, pretrain_data=PRETRAIN, trainer=TRAINER, seed=0,
                       vocab_size=200, steps=2, batch_size=8, model_config={"layers": 2, "width": 32, "heads": 2,
                       "ffn_dim": 64, "max_positions": 160})
    s0 = ecg_stage0(run_dir=tmp_path / "s0", inputs={}, pretrain_data=PRETRAIN, trainer=TRAINER, seed=0,
                    ecg_tower=TOWER, data={"batch_size": 4}, w2v_options={"mask_prob": 0.3, "mask_length": 4})
    assert s0.name == "last.ckpt" and s0.is_file()
    out = melp_stage(
        run_dir=tmp_path / "melp", inputs={"text_lm": lm, "stage0": s0}, pretrain_data=PRETRAIN, trainer=TRAINER,
        seed=0, text_from="text_lm", ecg_from="stage0", data={"batch_size": 4}, ecg_tower=TOWER,
        text_encoder={"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "offline_default",
                      "freeze_layers": 1, "max_length": 64},
        shared_dim=32, decoder_layers=1, decoder_heads=2, trainer_overrides={"max_steps": 3},
    )
    model = PretrainModule.from_checkpoint(out)
    assert torch.load(out, weights_only=False)["global_step"] == 3
    assert model.card.pretrained_on == ("synth-mimic",)
    assert model.encode_ecg(torch.randn(2, 12, 5000)).shape == (2, 32)
    assert model.encode_text(["Sinus rhythm."]).shape == (1, 32)
