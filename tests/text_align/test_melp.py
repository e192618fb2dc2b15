"""Tiny MELP: forward/backward/generate shapes with the real wav2vec2 tower and an offline tiny BERT."""

from __future__ import annotations

import pytest
import torch

from ecg_text_align.decoder import CaptionDecoder
from ecg_text_align.melp import MELP
from ecg_text_align.module import PretrainModule

REPORTS = ["sinus rhythm. normal ecg.", "atrial fibrillation with rapid ventricular response. abnormal ecg."]


def _melp(bert_dir, **kw) -> MELP:
    from text_align_stubs import tiny_melp

    return tiny_melp(bert_dir, **kw)


def test_melp_forward_backward(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    x = torch.randn(2, 12, 5000)
    losses = model.compute_losses({"ecg": x, "report": REPORTS})
    for k in ("loss", "clip", "caption", "local"):
        assert losses[k].ndim == 0 and torch.isfinite(losses[k]), k
    expected = losses["clip"] + 2.0 * losses["caption"] + 0.2 * losses["local"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["loss"].backward()
    assert model.decoder.text_projection.grad.abs().sum() > 0
    assert model.ecg_tower.attn_pool_contrast.query.grad.abs().sum() > 0
    frozen = [p for p in model.text.layers()[0].parameters()]
    assert all(not p.requires_grad for p in frozen)  # first half of the text layers frozen
    assert model.encode_ecg(x).shape == (2, 16) and model.encode_text(REPORTS).shape == (2, 16)


def test_melp_generate_report_and_checkpoint_roundtrip(tiny_bert_dir, tmp_path) -> None:
    model = _melp(tiny_bert_dir)
    reports = model.generate_report(torch.randn(2, 12, 5000), beam_size=2, max_len=6)
    assert len(reports) == 2 and all(isinstance(r, str) for r in reports)
    import lightning as L

    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = PretrainModule.from_checkpoint(tmp_path / "m.ckpt")
    x = torch.randn(1, 12, 5000)
    torch.testing.assert_close(loaded.encode_ecg(x), model.encode_ecg(x))


def test_melp_rpeak_beats_option(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir, beat_source="rpeaks")
    t = torch.arange(5000) / 500.0
    beat = torch.zeros(5000)
    for r in torch.arange(0.4, 10, 0.8):  # 75 bpm spikes on every lead
        beat += torch.exp(-(((t - r) / 0.01) ** 2))
    x = beat.repeat(2, 12, 1) + 0.01 * torch.randn(2, 12, 5000)
    rhythm, beats, mask, _ = model._ecg(x)
    assert beats.shape == (2, 24, 16) and mask.sum(1).tolist() == [12, 12]
    losses = model.compute_losses({"ecg": x, "report": REPORTS})
    losses["loss"].backward()
    assert torch.isfinite(losses["local"])


def test_caption_decoder_projection_is_initialised_and_causal() -> None:
    torch.manual_seed(0)
    dec = CaptionDecoder(vocab_size=50, width=16, layers=2, heads=2, context_length=10, ecg_dim=8)
    std = dec.text_projection.std().item()
    assert 0.5 * 16**-0.5 < std < 1.5 * 16**-0.5  # open_clip init, not torch.empty garbage
    ecg, text = torch.randn(1, 4, 8), torch.randn(1, 6, 16)
    out = dec(ecg, text)
    text2 = text.clone()
    text2[:, 4:] = torch.randn(1, 2, 16)
    out2 = dec(ecg, text2)
    assert out.shape == (1, 6, 50)
    torch.testing.assert_close(out[:, :4], out2[:, :4])  # token t never sees t+1..
    assert not torch.allclose(out[:, 4:], out2[:, 4:])


def test_beam_search_matches_greedy_with_beam_one(tiny_bert_dir) -> None:
    """beam_size=1 must equal step-by-step greedy decoding (argmax of the decoder at each step)."""
    model = _melp(tiny_bert_dir).eval()
    x = torch.randn(2, 12, 5000)
    got = model.generate_report(x, beam_size=1, max_len=5)
    tok = model.text.tokenizer
    banned = {model.pad_id, model.cls_id, model.start_id, tok.unk_token_id, tok.mask_token_id}
    with torch.no_grad():
        cap = model._ecg(x)[3]
        for i in range(2):
            ids = [model.start_id]
            for step in range(5):
                t = torch.tensor([ids])
                logits = model.decoder(cap[i : i + 1], model.text(t, torch.ones_like(t)).tokens)[0, -1]
                logits[list(banned)] = float("-inf")
                if step == 0:
                    logits[model.sep_id] = float("-inf")
                nxt = int(logits.argmax())
                if nxt == model.sep_id:
                    break
                ids.append(nxt)
            assert got[i] == tok.decode(ids[1:], skip_special_tokens=True).strip()


def test_text_tower_trains_in_train_mode(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    model.eval()  # as Hugging Face from_pretrained leaves the BERT
    model.on_fit_start()
    assert model.text.model.training and model.decoder.training
