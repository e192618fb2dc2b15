"""Issue 14: the paper recipes behave as the original code (logit-scale bound, stage-0 CMSC, masks per micro-batch)."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from ecg_text_align.losses import LogitScale, clamp_logit_scales_, clip_loss
from ecg_text_align.melp_stage0 import MELPStage0, cmsc_loss

LN100 = math.log(100.0)
ECG = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
TEXT = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize("offset", [-0.01, +0.01])
def test_logit_scale_keeps_its_gradient_on_both_sides_of_ln100(offset: float) -> None:
    """The old in-forward clamp gave gradient +40.4 just below ln 100 and exactly 0 just above (stuck forever)."""
    ls = LogitScale()
    with torch.no_grad():
        ls.log_scale.fill_(LN100 + offset)
    clip_loss(ECG, TEXT, ls()).backward()
    assert abs(ls.log_scale.grad.item()) > 1.0


def test_clamp_is_in_place_and_bounded_both_ways() -> None:
    ls = LogitScale()
    with torch.no_grad():
        ls.log_scale.fill_(LN100 + 0.5)
    clamp_logit_scales_(torch.nn.ModuleDict({"a": ls}))
    assert ls.log_scale.item() == pytest.approx(LN100) and ls.log_scale.requires_grad
    with torch.no_grad():
        ls.log_scale.fill_(-0.3)
    ls.clamp_()
    assert ls.log_scale.item() == 0.0  # MELP clamps to [0, ln 100]
    free = LogitScale(max_scale=float("inf"))  # ESI: unbounded, never clamped
    with torch.no_grad():
        free.log_scale.fill_(7.0)
    free.clamp_()
    assert free.log_scale.item() == 7.0


def test_fixed_scale_is_still_clamped() -> None:
    got = clip_loss(ECG, TEXT, torch.tensor(1000.0))
    assert got.item() == pytest.approx(clip_loss(ECG, TEXT, 100.0).item(), rel=1e-6)


def test_pretrain_module_clamps_after_each_optimizer_step(tmp_path) -> None:
    from text_align_stubs import ToyDataModule, ToyPretrain

    model = ToyPretrain(lr=10.0)  # a huge lr drives the scale far past the bound within one step
    with torch.no_grad():
        model.logit_scale.log_scale.fill_(LN100 - 1e-3)
    seen: list[float] = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *a) -> None:
            seen.append(pl_module.logit_scale.log_scale.item())

    trainer = L.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[Spy()],
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=ToyDataModule(with_val=False))
    assert len(seen) == 3 and all(0.0 <= s <= LN100 + 1e-6 for s in seen)


def test_step_seed_differs_per_micro_batch() -> None:
    from text_align_stubs import ToyPretrain

    m = ToyPretrain(lead_mask_p=0.5)
    seeds = []
    for i in range(3):
        m._batch_idx = i
        seeds.append(m.step_seed())
    assert len(set(seeds)) == 3  # same optimiser step (global_step 0), three micro-batches


def _hand_cmsc(a, b, scale, groups):
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    same = (groups[:, None] == groups[None]).float()
    t = same / same.sum(1, keepdim=True)
    l1 = -(t * (scale * a @ b.t()).log_softmax(1)).sum(1).mean()
    l2 = -(t * (scale * b @ a.t()).log_softmax(1)).sum(1).mean()
    return (l1 + l2) / 2


def test_cmsc_positives_are_every_same_subject_pair() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    groups = torch.tensor([7, 7, 3, 9, 3])  # subjects: records 0,1 and 2,4 share a patient
    got = cmsc_loss(a, b, torch.tensor(10.0), groups=groups, gather=False)
    assert got.item() == pytest.approx(_hand_cmsc(a, b, 10.0, groups).item(), rel=1e-5)
    per_record = cmsc_loss(a, b, torch.tensor(10.0), groups=None, gather=False)
    assert per_record.item() == pytest.approx(_hand_cmsc(a, b, 10.0, torch.arange(5)).item(), rel=1e-5)
    assert abs(got.item() - per_record.item()) > 1e-3


def _stage0(**kw) -> MELPStage0:
    torch.manual_seed(0)
    return MELPStage0(ecg_tower={"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}, **kw)


def test_stage0_defaults_follow_the_original() -> None:
    m = _stage0()
    hp = m.hparams
    assert (hp.cmsc_positives, hp.cmsc_embedding, hp.independent_half_masks, hp.anneal_gumbel_temp) == (
        "subject",
        "mean_linear",
        True,
        False,
    )
    head = m.cmsc_head
    assert (
        head.bias is None
        and head.in_features == m.ecg_tower.encoder.width
        and head.out_features == m.ecg_tower.shared_dim
    )


def test_stage0_gumbel_tau_stays_at_two_unless_annealed(monkeypatch) -> None:
    monkeypatch.setattr(MELPStage0, "global_step", property(lambda self: 10**6))  # far into training
    x = torch.randn(4, 12, 5000) * 0.1
    batch = {"ecg": x, "report": [""] * 4, "index": torch.arange(4), "subject_code": torch.tensor([0, 0, 1, 2])}
    taus = {}
    for anneal in (False, True):
        m = _stage0(anneal_gumbel_temp=anneal)
        m.train()
        m._batch_idx = 0
        out = m.compute_losses(batch)
        assert torch.isfinite(out["loss"])
        taus[anneal] = out["gumbel_tau"].item()
    assert taus == {False: 2.0, True: 0.5}  # MELP: tau stays 2; fairseq annealing reaches its floor 0.5


def test_stage0_halves_get_independent_lead_masks(monkeypatch) -> None:
    """The lead mask is drawn on the (2B) crops, so the two halves of one record are masked differently."""
    import ecg_text_align.melp_stage0 as s0

    seen = {}
    real = s0.random_lead_mask

    def spy(x, p, g):
        out = real(x, p, g)
        seen["kept"] = out.abs().sum(-1) > 0
        return out

    monkeypatch.setattr(s0, "random_lead_mask", spy)
    m = _stage0()
    m.train()
    m._batch_idx = 0
    x = torch.randn(8, 12, 5000) * 0.1 + 1.0
    m.compute_losses({"ecg": x, "report": [""] * 8, "index": torch.arange(8)})
    kept = seen["kept"]
    assert kept.shape == (16, 12)
    assert not torch.equal(kept[:8], kept[8:])  # first halves vs second halves of the same records


def test_melp_probe_feature_is_ext_ecg_emb(tiny_bert_dir) -> None:
    """MELP probes ext_ecg_emb: pooler -> LayerNorm -> mean over queries, without proj_contrast."""
    from ecg_text_align.melp import MELP

    torch.manual_seed(0)
    m = MELP(
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(tiny_bert_dir),
        },
        shared_dim=32,
        decoder_layers=1,
        decoder_heads=2,
    )
    x = torch.randn(3, 12, 5000) * 0.1
    probe = m.encode_ecg_probe(x)
    with torch.no_grad():
        m.eval()
        tok = m.ecg_tower.encoder(x).tokens
        want = m.ecg_tower.ln_contrast(m.ecg_tower.attn_pool_contrast(tok)).mean(1)
    torch.testing.assert_close(probe, want)
    zs = m.encode_ecg(x)  # the zero-shot space includes proj_contrast
    torch.testing.assert_close(zs, want @ m.ecg_tower.proj_contrast)
    assert not torch.allclose(probe, zs)


def test_melp_paper_selects_on_all_six_tasks_with_every_class(monkeypatch) -> None:
    """main_pretrain.py:51-55,163-165: val/mean_AUROC over the six tasks; 'default' takes every class's prompts."""
    import types

    import yaml

    import ecg_data.tasks as tasks
    from ecg_text_align.stages import resolve_zero_shot

    cfg = yaml.safe_load(open("configs/method/melp_paper.yaml"))
    melp = next(s for s in cfg["stages"] if s["name"] == "melp")
    assert list(melp["zero_shot"]) == ["ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "cpsc2018", "csn"]
    fake = {"ptbxl_super": ["CD", "HYP", "MI", "NORM", "STTC"], "cpsc2018": ["AF", "I-AVB", "LBBB", "NORM"]}
    monkeypatch.setattr(
        tasks,
        "get_task",
        lambda name, root=None, seed=0: types.SimpleNamespace(classes=fake[name], dataset=name.split("_")[0]),
    )
    got = resolve_zero_shot({"ptbxl_super": "default", "cpsc2018": "default", "x": {"A": ["a"]}})
    assert list(got["ptbxl_super"]) == fake["ptbxl_super"] and list(got["cpsc2018"]) == fake["cpsc2018"]
    assert all(isinstance(p, list) and p for p in got["ptbxl_super"].values())
    assert got["x"] == {"A": ["a"]}


def test_stage0_validation_loss_draws_fixed_masks_and_val_subjects(monkeypatch) -> None:
    """The validation loss keys its masks by a fixed step (comparable across epochs) and groups CMSC positives
    by the val split's subjects, not the training split's rows."""
    import types

    import pandas as pd

    m = _stage0()
    m.eval()
    x = torch.randn(4, 12, 5000) * 0.1
    batch = {"ecg": x, "report": [""] * 4, "index": torch.arange(4)}
    losses = []
    for step in (3, 700):
        monkeypatch.setattr(MELPStage0, "global_step", property(lambda self, s=step: s))
        m._in_val_loss, m._batch_idx = True, 0
        with torch.no_grad():
            losses.append(m.compute_losses(m._augment(batch))["loss"].item())
    assert losses[0] == losses[1]
    m._in_val_loss = False
    assert m.mask_step() == 700

    split = lambda pids: types.SimpleNamespace(index=pd.DataFrame({"patient_id": pids}))  # noqa: E731
    from ecg_text_align.data import DataFacts

    # what fit hands over after the datamodule's setup (the module never reads the datamodule)
    m.use_data(DataFacts(train_split=split(["a", "b", "c", "d", "e"]), loss_val_split=split(["x", "x", "y", None])))
    monkeypatch.setattr(MELPStage0, "trainer", property(lambda self: types.SimpleNamespace()))
    m._trainer = object()
    m.on_fit_start()
    m._in_val_loss = True
    assert m.subject_ids(batch).tolist() == [0, 0, 1, 2]  # rows 0 and 1 share subject x; a missing id is its own
    m._in_val_loss = False
    assert m.subject_ids(batch).tolist() == [0, 1, 2, 3]
