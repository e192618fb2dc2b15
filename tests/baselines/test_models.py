"""Loss and shape tests of each baseline on tiny inputs (no data, no training loop)."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.esi.model import ESI
from baselines.heartlang.model import HeartLangMSM, HeartLangVQ
from baselines.merl.model import MERL
from baselines.random_init.model import RandomInitEncoder, load
from ecg_eval.protocol import supports_zero_shot

REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation with rapid ventricular response. Abnormal ECG.",
    "Sinus bradycardia. Left bundle branch block. Abnormal ECG.",
    "Sinus tachycardia. ST depression, consider ischemia. Abnormal ECG.",
]


def _text(path, **kw):
    return {
        "_target_": "ecg_encoders.text.presets.build_text_preset",
        "name": "offline_default",
        "path": str(path),
        "freeze_layers": 1,
        **kw,
    }


def _ecg(n: int, fs: int = 500, seconds: int = 10) -> torch.Tensor:
    """Spiky ECG-like signals (R-peaks every 0.8 s) so the HeartLang tokenizer finds beats."""
    t = torch.arange(fs * seconds) / fs
    beat = torch.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    g = torch.Generator().manual_seed(0)
    return beat.expand(n, 12, -1) + 0.05 * torch.randn(n, 12, fs * seconds, generator=g)


def _finite_and_backprop(module, losses):
    assert all(torch.isfinite(v) for v in losses.values()), losses
    losses["loss"].backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_merl_losses_views_and_protocol(tiny_bert_dir):
    torch.manual_seed(0)
    m = MERL(text_encoder=_text(tiny_bert_dir, causal=False, add_trailing_cls=False, pooling="pooler"), proj_hidden=16)
    assert m.input_spec.preset == "merl" and (m.input_spec.fs, m.input_spec.length) == (500, 5000)
    assert m.card.preset == "tiny"  # from the ECG encoder spec, so paper-size cards say so
    assert m.text.freeze_layers == 1 and not any(p.requires_grad for p in m.text.model.encoder.layer[0].parameters())
    x = torch.randn(4, 12, 5000)
    losses = m.compute_losses({"ecg": x, "report": REPORTS})
    assert set(losses) == {"clip", "uma", "loss"}
    # loss = cma + uma (MERL utils_trainer.py); each a SUM of the two CE directions, so at most 2*log(B)*(1+margin)
    assert losses["loss"].item() == pytest.approx(losses["clip"].item() + losses["uma"].item(), rel=1e-6)
    assert losses["clip"].item() > math.log(4)  # summed directions: chance level is 2*log(4)
    _finite_and_backprop(m, losses)
    emb, txt = m.encode_ecg(x), m.encode_text(["Normal ECG", "Atrial fibrillation"])
    assert emb.shape == (4, m.ecg.pooled_dim) and txt.shape == (2, m.ecg.pooled_dim)
    assert supports_zero_shot(m)


def test_merl_two_dropout_views_differ_only_in_training():
    from ecg_text_align.losses import DropoutViews

    v = DropoutViews(8, 8, p=0.1)
    e = torch.randn(16, 8)
    a, b = v(e)
    assert a.shape == b.shape == (16, 8)
    v.eval()
    torch.testing.assert_close(v(e)[0], v.linear1(e))


def test_esi_losses_causal_text_and_enrichment(tiny_bert_dir):
    torch.manual_seed(0)
    m = ESI(
        text_encoder=_text(tiny_bert_dir, causal=True, add_trailing_cls=True, pooling="last", max_length=160),
        decoder_layers=1,
        decoder_heads=2,
    )
    assert m.input_spec.preset == "esi"
    captions = m.captions(REPORTS)
    assert "Potential ECG waveforms:" in captions[0] and captions[0].startswith("ECG findings: Sinus rhythm")
    losses = m.compute_losses({"ecg": torch.randn(4, 12, 5000), "report": REPORTS})
    assert {"contrastive", "caption", "loss"} <= set(losses)
    assert losses["loss"].item() == pytest.approx(losses["contrastive"].item() + losses["caption"].item(), rel=1e-6)
    assert losses["logit_scale"].item() == pytest.approx(math.e, rel=1e-5)  # esi.py: exp(temperature=1.)
    _finite_and_backprop(m, losses)
    assert m.encode_ecg(torch.randn(2, 12, 5000)).shape == m.encode_text(["Normal ECG", "LBBB"]).shape


def test_esi_caption_state_never_sees_the_token_it_predicts(tiny_bert_dir):
    """The causal stack: changing token i+1 must not change the text state at position i (which predicts it)."""
    m = ESI(
        text_encoder=_text(tiny_bert_dir, causal=True, add_trailing_cls=True, pooling="last"),
        decoder_layers=1,
        decoder_heads=2,
        enrich_captions=False,
    ).eval()
    t = m.text.tokenize(["sinus rhythm. normal ecg."])
    ids = t["input_ids"].clone()
    i = 2
    other = ids.clone()
    other[0, i + 1] = (ids[0, i + 1] + 7) % len(m.text.tokenizer)
    with torch.no_grad():
        a = m.text(ids, t["attention_mask"]).tokens
        b = m.text(other, t["attention_mask"]).tokens
    torch.testing.assert_close(a[0, : i + 1], b[0, : i + 1])
    assert not torch.allclose(a[0, i + 1], b[0, i + 1])


def test_esi_rejects_a_bidirectional_text_tower(tiny_bert_dir):
    with pytest.raises(ValueError, match="causal"):
        ESI(text_encoder=_text(tiny_bert_dir, causal=False, pooling="cls"), decoder_layers=1, decoder_heads=2)


def test_heartlang_vq_then_msm_chain(tmp_path):
    torch.manual_seed(0)
    x = _ecg(3, fs=100)
    vq = HeartLangVQ()
    assert vq.encode_text is None and vq.input_spec.preset == "heartlang" and vq.input_spec.fs == 100
    losses = vq.compute_losses({"ecg": x})
    assert set(losses) == {"loss", "rec", "quant"}
    _finite_and_backprop(vq, losses)
    ckpt = tmp_path / "vq.ckpt"
    torch.save({"state_dict": vq.state_dict()}, ckpt)

    msm = HeartLangMSM()
    msm.load_vq(ckpt)
    for k, v in vq.vq.state_dict().items():
        torch.testing.assert_close(msm.vq.state_dict()[k], v)
    msm.train()
    assert not msm.vq.training and not any(p.requires_grad for p in msm.vq.parameters())
    losses = msm.compute_losses({"ecg": x})
    # half of the real beats are masked (engine_for_pretraining.py)
    tokens = msm.encoder.tokenize(x)
    real = (~tokens.padding_mask).sum().item()
    assert losses["mask_frac"].item() * tokens.padding_mask.numel() == pytest.approx(real / 2, abs=3)
    assert losses["loss"].item() == pytest.approx(math.log(msm.vq.n_codes), rel=0.5)  # near chance at init
    _finite_and_backprop(msm, losses)
    assert msm.encode_ecg(x).shape == (3, msm.encoder.width)
    assert msm.encode_text is None and not supports_zero_shot(msm)


def test_heartlang_declares_its_per_dataset_downstream_inputs():
    """HeartLang @a08afd8 prepares each downstream dataset its own way (datasets/dataset_preprocess/): the harness
    gets that from ``input_spec.task_presets``; pretraining keeps preset ``heartlang`` (MIMIC, is_norm=False)."""
    from types import SimpleNamespace

    from ecg_data.tasks import TASKS
    from ecg_eval.protocol import declared_task_presets, preset_for

    want = {"ptbxl": "heartlang-ptbxl", "cpsc2018": "heartlang-cpsc2018", "csn": "heartlang-csn"}
    for module in (HeartLangMSM(), HeartLangVQ()):
        assert module.input_spec.preset == "heartlang" and declared_task_presets(module) == want
    msm = HeartLangMSM()
    got = {name: preset_for(msm, SimpleNamespace(name=name, dataset=TASKS.get(name).dataset)) for name in TASKS.names()}
    assert {n: got[n] for n in ("ptbxl_super", "ptbxl_form", "synth_ptbxl_rhythm")} == dict.fromkeys(
        ("ptbxl_super", "ptbxl_form", "synth_ptbxl_rhythm"), "heartlang-ptbxl"
    )
    assert got["cpsc2018"] == got["cpsc2018_full"] == got["synth_cpsc2018"] == "heartlang-cpsc2018"
    assert got["csn"] == got["csn_exact"] == "heartlang-csn"
    assert got["g12ec"] == got["code15"] == got["mimic_iv_ecg"] == got["synth_mimic"] == "heartlang"


def test_heartlang_vocab_must_match_codebook():
    with pytest.raises(ValueError, match="codebook"):
        HeartLangMSM(encoder_overrides={"vocab_size": 32})


def test_random_init_is_a_function_of_config_and_seed():
    x = torch.randn(2, 12, 5000)
    a, b, c = RandomInitEncoder(seed=0), load(None, seed=0), RandomInitEncoder(seed=1)
    torch.testing.assert_close(a.encode_ecg(x), b.encode_ecg(x))
    assert a.card.checkpoint_hash == b.card.checkpoint_hash != c.card.checkpoint_hash
    assert not torch.allclose(a.encode_ecg(x), c.encode_ecg(x))
    assert a.encode_ecg(x).shape[0] == 2 and a.card.n_parameters > 0
    assert not supports_zero_shot(a) and a.input_spec.preset == "melp"
    with pytest.raises(ValueError, match="no checkpoint"):
        load("/some/ckpt")


def test_stage_passes_prompt_class_order_to_the_datamodule(monkeypatch, tmp_path, tiny_bert_dir):
    """Validation labels must be selected by the prompts' class names, in the prompts' order (not by position)."""
    import ecg_text_align.train as train
    from baselines.merl.stages import merl_stage

    seen = {}

    def fake_fit(module, dm, trainer_cfg, run_dir):
        seen["classes"], seen["preset"] = dm.zero_shot_classes, dm.preset
        return tmp_path / "x.ckpt"

    monkeypatch.setattr(train, "fit", fake_fit)
    zs = {"synth_ptbxl_super": {"NORM": ["Normal ECG"], "MI": ["Myocardial infarction"], "CD": ["LBBB"]}}
    merl_stage(
        run_dir=tmp_path,
        inputs={"text_lm": tiny_bert_dir},
        pretrain_data={"name": "synth-mimic", "task": "synth_mimic"},
        trainer={},
        seed=0,
        zero_shot=zs,
        text_from="text_lm",
        proj_hidden=8,
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "causal": False,
            "add_trailing_cls": False,
            "pooling": "pooler",
            "freeze_layers": 1,
        },
    )
    assert seen == {"classes": {"synth_ptbxl_super": ["NORM", "MI", "CD"]}, "preset": "merl"}
