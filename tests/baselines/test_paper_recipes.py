"""Issue 14: the composed paper recipes carry the originals' values (each cited with file:line in the YAML)."""

from __future__ import annotations

import math

from bl_e2e import compose
from omegaconf import OmegaConf


def _stages(experiment: str) -> dict[str, dict]:
    cfg = OmegaConf.to_container(compose([f"experiment={experiment}"]), resolve=True)
    return {s["name"]: s for s in cfg["method"]["stages"]}, cfg


def test_heartlang_paper_recipe():
    st, cfg = _stages("heartlang_paper")
    vq, msm = st["vqhbr"], st["msm"]
    assert math.isclose(vq["lr"], 5e-5 * 8 * 64 / 128)  # run_vqhbr_training.py:353-354 at 8 GPUs x 64
    assert math.isclose(vq["lr"] * vq["min_lr_ratio"], 1e-5)  # MIMIC-IV.sh:24 --min_lr
    assert vq["trainer_overrides"]["gradient_clip_val"] is None  # no clipping
    assert vq["trainer_overrides"]["max_epochs"] == 100
    assert msm["trainer_overrides"]["max_epochs"] == 200 != cfg["trainer"]["max_epochs"]  # not the trainer's 100
    assert msm["trainer_overrides"]["gradient_clip_val"] == 3.0
    assert msm["exclude_padding"] is False
    assert math.isclose(msm["lr"] * msm["min_lr_ratio"], 1e-5)


def test_merl_paper_recipe_freezes_the_text_tower():
    st, _ = _stages("merl_paper")
    assert st["merl"]["train_text_tower"] is False
    assert st["merl"]["decay_1d_params"] is True  # pretrain/main.py:86-90: AdamW(model.parameters())


def test_esi_paper_recipe():
    st, _ = _stages("esi_paper")
    esi = st["esi"]
    assert esi["ecg_encoder"]["downsample_norm"] == "time"
    assert esi["gather_negatives"] is False and math.isinf(esi["max_logit_scale"])
    assert (esi["augment_jitter"], esi["augment_scale"]) == (0.003, 0.003)
    assert esi["decay_1d_params"] is True and esi["decoder_block"] == "coca"


def test_melp_paper_recipe():
    st, _ = _stages("melp_paper")
    s0, melp = st["stage0"], st["melp"]
    assert s0["ecg_tower"]["pooler"]["n_queries_contrast"] == melp["ecg_tower"]["pooler"]["n_queries_contrast"] == 12
    assert s0["trainer_overrides"]["precision"] == "32-true"  # main_pretrain.py:78
    # main_pretrain.py:57-65: stage 0 keeps the top-2 by val/loss on the MIMIC val split, early stopping patience 5
    assert s0["select_on"] == "val_loss"
    assert (s0["trainer_overrides"]["checkpoint_best_k"], s0["trainer_overrides"]["early_stopping_patience"]) == (2, 5)
    assert (s0["cmsc_positives"], s0["cmsc_embedding"], s0["independent_half_masks"], s0["anneal_gumbel_temp"]) == (
        "subject",
        "mean_linear",
        True,
        False,
    )
    assert tuple(s0["betas"]) == (0.9, 0.95) and s0["weight_decay"] == 0.2
    assert melp["trainer_overrides"]["early_stopping_patience"] == 5  # main_pretrain.py:54-55
    assert s0["decay_1d_params"] is True and melp["decay_1d_params"] is True  # base_pretrain_model.py:45
