"""Quantiser, span masking and the wav2vec2 contrastive pretraining head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_encoders.ecg.w2v_masking import compute_mask_indices
from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer, sample_negatives
from ecg_encoders.ecg.w2v_quantizer import GumbelVectorQuantizer
from ecg_encoders.registry import build_ecg_encoder


def test_quantizer_shapes_and_codebook_lookup() -> None:
    torch.manual_seed(0)
    q = GumbelVectorQuantizer(dim=16, num_vars=5, groups=2, vq_dim=8).eval()
    x = torch.randn(3, 7, 16)
    out = q(x)
    assert out.x.shape == (3, 7, 8)
    assert out.targets.shape == (3, 7, 2)
    assert out.num_vars == 10
    assert 1.0 <= out.prob_perplexity.item() <= 10.0
    # eval: hard argmax; each half of the vector is the chosen entry of that group's codebook
    books = q.vars.view(2, 5, 4)
    t = out.targets[0, 0]
    assert torch.allclose(out.x[0, 0], torch.cat([books[0, t[0]], books[1, t[1]]]))


def test_quantizer_training_is_straight_through_and_temperature_anneals() -> None:
    q = GumbelVectorQuantizer(dim=16, num_vars=5, groups=2, vq_dim=8, temp=(2.0, 0.5, 0.5)).train()
    x = torch.randn(2, 4, 16, requires_grad=True)
    q(x).x.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    q.set_num_updates(1)
    assert q.curr_temp == pytest.approx(1.0)
    q.set_num_updates(100)
    assert q.curr_temp == pytest.approx(0.5)


def test_compute_mask_indices_equal_counts_and_reproducible() -> None:
    m1 = compute_mask_indices((4, 312), 0.65, 10, rng=np.random.default_rng(0))
    m2 = compute_mask_indices((4, 312), 0.65, 10, rng=np.random.default_rng(0))
    assert m1.shape == (4, 312) and m1.dtype == bool
    assert np.array_equal(m1, m2)
    counts = m1.sum(1)
    assert (counts == counts[0]).all()
    # ~0.65 * 312 / 10 = 20 spans of 10 with overlaps -> roughly half the steps masked
    assert 0.3 * 312 < counts[0] < 0.8 * 312


def test_compute_mask_indices_respects_padding_and_min_masks() -> None:
    pad = np.zeros((2, 50), dtype=bool)
    pad[1, 30:] = True
    m = compute_mask_indices((2, 50), 0.0, 5, min_masks=2, padding_mask=pad, rng=np.random.default_rng(1))
    assert m.sum(1)[0] == m.sum(1)[1] > 0
    assert not m[1, 30:].any()
    with pytest.raises(ValueError, match="unknown mask selection"):
        compute_mask_indices((1, 50), 0.5, 5, mask_type="zipf")


def test_sample_negatives_never_picks_the_positive() -> None:
    y = torch.arange(2 * 6, dtype=torch.float32).view(2, 6, 1).expand(2, 6, 3).contiguous()
    negs = sample_negatives(y, 20, torch.Generator().manual_seed(0))
    assert negs.shape == (20, 2, 6, 3)
    assert not (negs == y[None]).all(-1).any()
    # distractors come from the same record
    assert (negs[:, 0, :, 0] < 6).all() and (negs[:, 1, :, 0] >= 6).all()


def test_pretrainer_loss_and_backward() -> None:
    torch.manual_seed(0)
    enc = build_ecg_encoder("wav2vec2", "tiny")
    pre = Wav2Vec2Pretrainer(enc).train()
    x = torch.randn(2, 12, 5000)
    out = pre(x, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0))
    m = int(out.mask_indices[0].sum())
    assert out.logits.shape == (2 * m, 1 + enc.cfg.num_negatives)
    assert out.tokens.shape == (2, 312, 64)
    assert torch.isfinite(out.loss)
    assert out.loss >= out.contrastive_loss > 0
    assert 0 <= out.diversity_loss.item() <= 1
    out.loss.backward()
    assert enc.mask_emb.grad is not None and pre.quantizer.vars.grad is not None
    assert pre.final_proj.weight.grad.abs().sum() > 0


def test_pretrainer_rejects_unequal_masks_and_unknown_options() -> None:
    enc = build_ecg_encoder("wav2vec2", "tiny")
    with pytest.raises(TypeError, match="unknown Wav2Vec2Pretrainer option"):
        Wav2Vec2Pretrainer(enc, final_dimm=3)
    pre = Wav2Vec2Pretrainer(enc)
    mask = torch.zeros(2, 312, dtype=torch.bool)
    mask[0, :10] = True
    mask[1, :12] = True
    with pytest.raises(ValueError, match="same number of masked steps"):
        pre(torch.randn(2, 12, 5000), mask_indices=mask)
