"""Issue 14: each baseline's paper behaviour follows the original code (values cited in the configs)."""

from __future__ import annotations

import math

import pytest
import torch
from test_models import REPORTS, _ecg, _text

from baselines.esi.model import ESI
from baselines.heartlang.model import HeartLangMSM
from baselines.merl.model import MERL


def _merl(tiny_bert_dir, **kw) -> MERL:
    torch.manual_seed(0)
    return MERL(
        text_encoder=_text(tiny_bert_dir, causal=False, add_trailing_cls=False, pooling="pooler"), proj_hidden=16, **kw
    )


def test_merl_text_tower_is_never_trained_by_default(tiny_bert_dir):
    """utils_builder.py:148-152: get_text_emb runs under torch.no_grad, so no BERT tensor gets a gradient."""
    m = _merl(tiny_bert_dir)
    assert sum(p.numel() for p in m.text.parameters() if p.requires_grad) == 0
    m.train()
    losses = m.compute_losses({"ecg": torch.randn(4, 12, 5000), "report": REPORTS})
    losses["loss"].backward()
    assert all(p.grad is None for p in m.text.parameters())
    assert all(p.grad is not None for p in m.proj_text.parameters())  # proj_t is trained, as in MERL
    assert m.text.training  # dropout active in the no-grad text pass, as MERL's model.train()
    opt_params = {id(p) for g in m._param_groups() for p in g["params"]}
    assert not any(id(p) in opt_params for p in m.text.parameters())


def test_merl_trainable_text_tower_is_a_named_option(tiny_bert_dir):
    m = _merl(tiny_bert_dir, train_text_tower=True)
    losses = m.compute_losses({"ecg": torch.randn(4, 12, 5000), "report": REPORTS})
    losses["loss"].backward()
    top = m.text.model.encoder.layer[-1]
    assert all(p.grad is not None for p in top.parameters())  # upper layers train, lower half frozen
    assert all(p.grad is None for p in m.text.model.encoder.layer[0].parameters())


def test_merl_probe_feature_is_the_backbone_average_with_batch_statistics(tiny_bert_dir):
    m = _merl(tiny_bert_dir).eval()
    x = torch.randn(6, 12, 5000)
    f = m.encode_ecg_probe(x)
    assert f.shape == (6, m.ecg.backbone.out_channels)
    running = [b.running_mean.clone() for b in m.ecg.backbone.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    # batch statistics: a record's feature depends on the rest of the batch; eval-mode statistics do not
    assert not torch.allclose(m.encode_ecg_probe(x[:3]), f[:3], atol=1e-5)
    torch.testing.assert_close(
        m.encode_ecg_probe(x[:3], bn_train_mode=False), m.encode_ecg_probe(x, bn_train_mode=False)[:3]
    )
    after = [b.running_mean for b in m.ecg.backbone.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    assert all(torch.equal(a, b) for a, b in zip(running, after))  # running statistics untouched
    assert not m.training


def test_heartlang_original_masking_puts_loss_on_padding_slots():
    """exclude_padding=False (the original): padding slots can be masked and their codes are targets."""
    torch.manual_seed(0)
    x = _ecg(2, fs=100)
    msm = HeartLangMSM(exclude_padding=False)
    tokens = msm.encoder.tokenize(x)
    assert tokens.padding_mask.any()
    ids_ours = msm.vq.codebook_ids(tokens)
    ids_orig = msm.vq.codebook_ids(tokens, ignore_index=None)
    assert (ids_ours[tokens.padding_mask] == -100).all() and (ids_orig >= 0).all()
    losses = msm.compute_losses({"ecg": x})
    n = tokens.padding_mask.shape[1]
    assert losses["mask_frac"].item() == pytest.approx((n - n // 2) / n)  # N - int(N/2) of all slots


def _esi(tiny_bert_dir, **kw) -> ESI:
    torch.manual_seed(0)
    return ESI(
        text_encoder=_text(tiny_bert_dir, causal=True, add_trailing_cls=True, pooling="last", max_length=160),
        decoder_layers=1,
        decoder_heads=2,
        **kw,
    )


def test_esi_defaults_follow_the_original(tiny_bert_dir):
    from ecg_text_align.coca_decoder import CoCaDecoder

    m = _esi(tiny_bert_dir)
    assert isinstance(m.decoder, CoCaDecoder)
    assert m.hparams.gather_negatives is False and math.isinf(m.logit_scale.max_scale)
    groups = m._param_groups()
    assert len(groups) == 1 and groups[0]["weight_decay"] == m.weight_decay  # 1-D tensors decayed too (main.py:59)
    with torch.no_grad():
        m.logit_scale.log_scale.fill_(8.0)
    m.logit_scale.clamp_()
    assert m.logit_scale.log_scale.item() == 8.0  # ESI's temperature is never clamped


def test_esi_augmentation_is_in_millivolts_before_the_per_record_zscore(tiny_bert_dir):
    """utils/ecg_loader.py:52-57,80-85: Jitter(0.003) and per-lead Scaling(0.003) on the raw signal, then the z-score.
    Through ``finish_batch`` with the esi preset's deferred normaliser, the result equals that order exactly."""
    from ecg_data.loader import finish_batch
    from ecg_data.preprocess import get_preset

    m = _esi(tiny_bert_dir)
    stored, normalizer = get_preset("esi").split_normalization()
    assert stored.name == "raw500" and normalizer is not None  # the cache holds millivolts
    g = torch.Generator().manual_seed(1)
    mv = torch.randn(3, 12, 5000, generator=g) * 0.4  # millivolts
    batch = {"ecg": mv, "index": torch.tensor([5, 9, 11])}
    raw = m.augment_raw(batch, mv)
    d = (raw - mv).abs()
    assert 1e-3 < d.mean().item() < 0.01  # sigma 0.003 mV jitter + 0.3 % per-lead gain on ~0.4 mV
    lead_gain = ((raw - mv) / mv).median(dim=-1).values  # one factor per (record, lead)
    assert lead_gain.std().item() < 0.01
    out = finish_batch(batch, normalizer=normalizer, raw_augment=m.augment_raw)["ecg"]
    ref = (raw - raw.mean(dim=(1, 2), keepdim=True)) / (raw.std(dim=(1, 2), keepdim=True) + 1e-6)  # ESI's z-score
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.augment_raw(batch, mv), raw)  # the same batch at the same step: the same noise
    other = m.augment_raw({**batch, "index": torch.tensor([6, 9, 11])}, mv)
    assert not torch.equal(other, raw)
    off = _esi(tiny_bert_dir, augment_jitter=0.0, augment_scale=0.0)
    assert torch.equal(off.augment_raw(batch, mv), mv)


def test_esi_batches_are_augmented_in_training_only_through_one_hook(tiny_bert_dir):
    """``PretrainModule.transform_batch`` is the one place a batch is transformed: the same tensors as the former path
    (the data module's ``finish_batch`` with the module's ``augment_raw``, then the module's lead masks), raw
    augmentation for training batches only, nothing fetched from the datamodule (fit hands ``DataFacts`` over)."""
    from ecg_data.loader import finish_batch
    from ecg_data.preprocess import get_preset
    from ecg_text_align.data import DataFacts

    m = _esi(tiny_bert_dir, lead_mask_p=0.5)
    _, normalizer = get_preset("esi").split_normalization()
    m.use_data(DataFacts(normalizer=normalizer))
    x = torch.randn(2, 12, 5000).half()  # the stored dtype of a large cache
    batch = {"ecg": x, "index": torch.tensor([0, 1])}
    old = m._augment(finish_batch(batch, normalizer=normalizer, raw_augment=m.augment_raw))["ecg"]
    new = m.transform_batch(batch, augment=True, lead_masks=True)["ecg"]
    assert new.dtype == torch.float32 and torch.equal(new, old)
    val = m.transform_batch(batch, augment=False, lead_masks=False)["ecg"]
    assert torch.equal(val, normalizer.batch(x.float()))  # validation: normalised, not augmented
    assert not torch.equal(m.transform_batch(batch, augment=True, lead_masks=False)["ecg"], val)


def test_fit_hands_the_data_facts_to_the_module_after_the_datamodules_setup(tiny_bert_dir):
    import types

    from ecg_text_align.data import DataFacts
    from ecg_text_align.train import HandOverData

    m = _esi(tiny_bert_dir)
    facts = DataFacts(loss_val_index=2)
    HandOverData().setup(types.SimpleNamespace(datamodule=types.SimpleNamespace(facts=lambda: facts)), m, "fit")
    assert m.data_facts is facts and m.data_facts.loss_val_index == 2
    HandOverData().setup(types.SimpleNamespace(datamodule=None), m, "fit")  # plain dataloaders: nothing to hand over
    assert m.data_facts is facts


def test_coca_decoder_is_causal_and_parameter_count_matches_esi():
    from ecg_text_align.coca_decoder import CoCaDecoder

    with torch.device("meta"):
        paper = CoCaDecoder(vocab_size=28895, width=768, layers=6, heads=8)
    blocks = sum(p.numel() for n, p in paper.named_parameters() if not n.startswith(("to_logits", "ln_final")))
    assert blocks == 95_560_704  # ESI esi.py multimodal layers at dim 768, 8 x 64 heads, ff_mult 4, depth 6
    assert all(lin.bias is None for lin in paper.modules() if isinstance(lin, torch.nn.Linear))
    torch.manual_seed(0)
    d = CoCaDecoder(vocab_size=50, width=32, layers=2, heads=2, dim_head=16, context_length=20).eval()
    ctx, text = torch.randn(2, 1, 32), torch.randn(2, 10, 32)
    other = text.clone()
    other[:, 6:] += 1.0
    a, b = d(ctx, text), d(ctx, other)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_merl_vit_tower_gets_merls_proj_e_head(tiny_bert_dir):
    """MERL's default config uses vit_tiny (config.yaml:3) with proj_e = Linear-BN-ReLU-Linear-BN (utils_builder.py:80-98)."""
    torch.manual_seed(0)
    m = MERL(
        ecg_encoder={"_target_": "ecg_encoders.ecg.vit1d.build_vit1d", "preset": "tiny"},
        proj_out=16,
        text_encoder=_text(tiny_bert_dir, causal=False, add_trailing_cls=False, pooling="pooler"),
        proj_hidden=8,
    )
    assert m.vit_head and [type(l).__name__ for l in m.proj_ecg] == [
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
        "BatchNorm1d",
    ]
    assert m.views.linear1.in_features == m.ecg.pooled_dim and m.views.linear1.out_features == 16
    m.train()
    losses = m.compute_losses({"ecg": torch.randn(4, 12, 5000), "report": REPORTS})
    losses["loss"].backward()
    assert m.proj_ecg[0].weight.grad is not None
    assert m.encode_ecg(torch.randn(3, 12, 5000)).shape == (3, 16) == (3, m.encode_text(["Normal ECG"]).shape[1])
    paper = MERL(
        ecg_encoder={"_target_": "ecg_encoders.ecg.vit1d.build_vit1d", "preset": "merl_vit_tiny"},
        text_encoder=_text(tiny_bert_dir, causal=False, add_trailing_cls=False, pooling="pooler"),
    )
    extra = sum(p.numel() for p in paper.proj_ecg.parameters()) + sum(p.numel() for p in paper.views.parameters())
    assert extra == (192 * 256 + 256) + 2 * 256 + (256 * 256 + 256) + 2 * 256 + 2 * 192 * 256


def test_esi_captions_open_with_age_and_sex_from_the_patients_table(tiny_bert_dir, monkeypatch):
    """ESI (utils/data/process_mimic.py:12-13,74-78): anchor age and sex from MIMIC-IV's patients table open each
    caption. The MIMIC reader reads the table beside the ECG files; the data module serves it per cache row."""
    import types

    from baselines.esi.model import demographics_sentence
    from ecg_data.synthetic import ensure_preset
    from ecg_text_align.data import PretrainDataModule

    root = ensure_preset("synth-mimic", n=40)
    assert (root / "patients.csv").is_file()  # the synthetic corpus writes the hosp table too
    dm = PretrainDataModule(pretrain_task="synth_mimic", preset="esi", root=str(root), batch_size=4)
    dm.setup()
    demo = dm.demographics()
    assert len(demo) == len(dm.train_split) and all(a is not None and s in ("M", "F") for a, s in demo)
    md = dm._task.reader().metadata()
    rid = dm.train_split.record_ids[0]
    assert demo[0] == (int(md.loc[rid, "age"]), md.loc[rid, "sex"])

    m = _esi(tiny_bert_dir)
    m._trainer = object()
    monkeypatch.setattr(type(m), "trainer", property(lambda self: types.SimpleNamespace()))
    m.use_data(dm.facts())  # what ecg_text_align.train.fit does after the datamodule's setup
    m.on_fit_start()
    batch = {"report": ["Sinus rhythm.", "Atrial fibrillation."], "index": torch.tensor([0, 1])}
    caps = m.captions(batch["report"], m.batch_demographics(batch))
    age, sex = demo[0]
    assert caps[0].startswith(
        f"Patient: {age}-year-old {'male' if sex == 'M' else 'female'}. ECG findings: Sinus rhythm"
    )
    assert demographics_sentence(None, None) == ""
    off = _esi(tiny_bert_dir, caption_demographics=False)
    assert off.captions(["Sinus rhythm."], [(50, "F")])[0].startswith("ECG findings:")
