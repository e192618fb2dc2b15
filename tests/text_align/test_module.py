"""PretrainModule protocol, schedule, zero-shot validation and exact mid-run resume."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from text_align_stubs import PROMPTS, ToyDataModule, ToyPretrain

from ecg_text_align.module import PretrainModule
from ecg_text_align.schedule import warmup_cosine
from ecg_text_align.train import fit
from ecg_text_align.zeroshot import macro_auroc

TRAIN_CFG = {"max_epochs": 3, "checkpoint_every_n_steps": 1, "seed": 0, "deterministic": True}


def _run(run_dir, max_steps: int) -> ToyPretrain:
    L.seed_everything(0)
    model = ToyPretrain(lr=1e-2, warmup_steps=2, total_steps=12, lead_mask_p=0.5, zero_shot=PROMPTS)
    fit(model, ToyDataModule(n=32, batch_size=4), {**TRAIN_CFG, "max_steps": max_steps}, run_dir)
    return model


def test_resume_from_last_reproduces_uninterrupted_run(tmp_path) -> None:
    full = _run(tmp_path / "full", 12)  # 8 batches/epoch: the stop at step 5 is mid-epoch
    _run(tmp_path / "cut", 5)
    assert (tmp_path / "cut/checkpoints/last.ckpt").is_file()
    resumed = _run(tmp_path / "cut", 12)
    assert resumed.global_step == full.global_step == 12
    init = ToyPretrain(lr=1e-2).state_dict()
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, atol=0, rtol=0)
    assert any(not torch.equal(init[k], v) for k, v in full.state_dict().items())  # it did train


def test_best_checkpoint_by_val_zero_shot_loads_in_one_call(tmp_path) -> None:
    L.seed_everything(0)
    model = ToyPretrain(lr=1e-2, warmup_steps=1, zero_shot=PROMPTS)
    best = fit(model, ToyDataModule(n=32, batch_size=4), {"max_epochs": 2, "seed": 0}, tmp_path)
    assert best.name == "best.ckpt"
    ckpt = torch.load(best, weights_only=True)
    assert "val/zs_auroc" in str(ckpt["callbacks"])
    loaded = PretrainModule.from_checkpoint(best)
    assert type(loaded) is ToyPretrain and not loaded.training
    x = torch.randn(3, 12, 100)
    torch.testing.assert_close(loaded.encode_ecg(x), loaded.embed_ecg(x))
    assert loaded.encode_text(["normal ecg", "atrial fibrillation"]).shape == (2, 8)
    card = loaded.card
    assert card.name == "toy" and len(card.checkpoint_hash) == 16 and card.n_parameters > 0
    spec = loaded.input_spec
    assert (spec.preset, spec.fs, spec.length) == ("melp", 500, 100)
    logs = (tmp_path / "logs/version_0/metrics.csv").read_text()
    assert "val/zs_auroc" in logs


def test_encode_is_eval_mode_no_grad_and_restores_training() -> None:
    model = ToyPretrain()
    model.train()
    out = model.encode_ecg(torch.randn(2, 12, 100))
    assert not out.requires_grad and model.training


def test_ecg_only_subclass_has_no_encode_text() -> None:
    class EcgOnly(PretrainModule):
        def embed_ecg(self, x):
            return x.mean(-1)

    m = EcgOnly()
    assert m.encode_text is None  # ecg-eval's supports_zero_shot -> False
    assert callable(ToyPretrain().encode_text)


def test_warmup_cosine_schedule() -> None:
    assert warmup_cosine(0, 4, 20) == pytest.approx(0.25)
    assert warmup_cosine(3, 4, 20) == pytest.approx(1.0)
    assert warmup_cosine(12, 4, 20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert warmup_cosine(20, 4, 20, min_ratio=0.1) == pytest.approx(0.1)


def test_optimizer_is_adamw_without_decay_on_1d_params() -> None:
    model = ToyPretrain(lr=3e-4, betas=(0.9, 0.95), weight_decay=0.2, total_steps=10)
    opt = model.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.95)
    decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays[id(model.ecg.weight)] == 0.2 and decays[id(model.logit_scale.log_scale)] == 0.0


def test_macro_auroc_excludes_single_label_classes() -> None:
    import numpy as np

    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.3], [0.2, 0.5, 0.1], [0.4, 0.2, 0.8], [0.3, 0.9, 0.2]])
    auc, excluded = macro_auroc(s, y, ["a", "b", "c"])
    assert excluded == ["b", "c"] and auc == pytest.approx(1.0)


def test_zero_shot_labels_follow_the_prompt_order_by_name() -> None:
    import numpy as np
    import pandas as pd

    from ecg_text_align.data import labels_by_name

    class FakeTask:
        name = "fake"
        labels = pd.DataFrame({"CD": [1, 0], "NORM": [0, 1]}, index=["a", "b"], dtype="int8")

        def y(self, ids):
            return self.labels.loc[list(ids)].to_numpy(np.float32)

    got = labels_by_name(FakeTask(), ["b", "a"], ["NORM", "CD"])
    np.testing.assert_array_equal(got, [[1, 0], [0, 1]])
    with pytest.raises(KeyError, match="MI"):
        labels_by_name(FakeTask(), ["a"], ["MI"])
