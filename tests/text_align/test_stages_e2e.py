"""The three MELP stages through the runner's stage contract on a 40-record synthetic corpus (2 steps each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecg_text_align.module import PretrainModule
from ecg_text_align.stages import ecg_stage0, melp_stage, text_lm_stage

PRETRAIN = {"name": "synth-mimic", "task": "synth_mimic", "suite": "synthetic", "n": 40, "root": None}
TRAINER = {"max_steps": 2, "max_epochs": 5, "checkpoint_every_n_steps": 1}
TOWER = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}


def test_stage1_stage0_stage2_chain(tmp_path) -> None:
    lm = text_lm_stage(
        run_dir=tmp_path / "lm",
        inputs={},
        pretrain_data=PRETRAIN,
        trainer=TRAINER,
        seed=0,
        vocab_size=200,
        steps=2,
        batch_size=8,
        model_config={"layers": 2, "width": 32, "heads": 2, "ffn_dim": 64, "max_positions": 160},
    )
    s0 = ecg_stage0(
        run_dir=tmp_path / "s0",
        inputs={},
        pretrain_data=PRETRAIN,
        trainer=TRAINER,
        seed=0,
        ecg_tower=TOWER,
        data={"batch_size": 4},
        w2v_options={"mask_prob": 0.3, "mask_length": 4},
    )
    assert s0.name == "last.ckpt" and s0.is_file()
    out = melp_stage(
        run_dir=tmp_path / "melp",
        inputs={"text_lm": lm, "stage0": s0},
        pretrain_data=PRETRAIN,
        trainer=TRAINER,
        seed=0,
        text_from="text_lm",
        ecg_from="stage0",
        data={"batch_size": 4},
        ecg_tower=TOWER,
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "freeze_layers": 1,
            "max_length": 64,
        },
        shared_dim=32,
        decoder_layers=1,
        decoder_heads=2,
        trainer_overrides={"max_steps": 3},
    )
    model = PretrainModule.from_checkpoint(out)
    assert torch.load(out, weights_only=True)["global_step"] == 3
    assert model.card.pretrained_on == ("synth-mimic",)
    assert model.encode_ecg(torch.randn(2, 12, 5000)).shape == (2, 32)
    assert model.encode_text(["Sinus rhythm."]).shape == (1, 32)


def test_stage0_selects_on_the_corpus_validation_loss(tmp_path) -> None:
    """melp_paper's stage 0 (``select_on: val_loss``): the pretraining corpus's val split is a loss loader, the
    loss is logged as ``val/loss`` every epoch, and the stage returns the lowest-loss checkpoint (top-2 kept),
    as MELP's ``main_pretrain.py:57-65`` (ModelCheckpoint/EarlyStopping on val/loss, min, top-2)."""
    import csv

    trainer = {
        "max_steps": -1,
        "max_epochs": 3,
        "checkpoint_every_n_steps": 1,
        "checkpoint_best_k": 2,
        "early_stopping_patience": 5,
    }
    out = ecg_stage0(
        run_dir=tmp_path / "s0",
        inputs={},
        pretrain_data=PRETRAIN,
        trainer=trainer,
        seed=0,
        ecg_tower=TOWER,
        data={"batch_size": 8},
        w2v_options={"mask_prob": 0.3, "mask_length": 4},
        select_on="val_loss",
    )
    assert out.name.startswith("best-step") and out.is_file()
    kept = sorted(p.name for p in out.parent.glob("best-step*.ckpt"))
    assert len(kept) == 2
    rows = list(csv.DictReader(open(tmp_path / "s0" / "logs" / "version_0" / "metrics.csv")))
    val = [(int(r["step"]), float(r["val/loss"])) for r in rows if r.get("val/loss")]
    assert len(val) == 3 and all(v == v for _, v in val)  # one value per epoch, finite
    # the returned file is the checkpoint callback's best: the lowest logged validation loss
    last = torch.load(tmp_path / "s0" / "checkpoints" / "last.ckpt", weights_only=True)
    state = next(
        v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint") and v.get("monitor") == "val/loss"
    )
    assert Path(state["best_model_path"]).name == out.name
    assert float(state["best_model_score"]) == pytest.approx(min(v for _, v in val))
    model = PretrainModule.from_checkpoint(out)
    assert model.select_on == "val_loss" and model.selection() == ("val/loss", "min")


def test_val_loss_selection_needs_the_loss_loader(tmp_path) -> None:
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.melp_stage0 import MELPStage0
    from ecg_text_align.train import fit

    module = MELPStage0(ecg_tower=TOWER, select_on="val_loss")
    dm = PretrainDataModule(pretrain_task="synth_mimic", batch_size=4)
    with pytest.raises(ValueError, match="val_loss=True"):
        fit(module, dm, {"max_steps": 1}, tmp_path)
