"""Each loss against values computed by hand on tiny batches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecg_text_align.losses import (
    LogitScale,
    caption_loss,
    clip_loss,
    local_alignment_loss,
    unimodal_alignment_loss,
)


def _lse(*xs: float) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _hand_clip(scale: float, s=((1.0, 0.6), (0.0, 0.8))) -> float:
    # default: ecg = [[1,0],[0,1]], text = [[1,0],[.6,.8]] -> similarities [[1,.6],[0,.8]]
    rows = [_lse(*(scale * v for v in s[i])) - scale * s[i][i] for i in range(2)]
    cols = [_lse(*(scale * s[j][i] for j in range(2))) - scale * s[i][i] for i in range(2)]
    return (sum(rows) / 2 + sum(cols) / 2) / 2


ECG = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TEXT = torch.tensor([[1.0, 0.0], [0.6, 0.8]])


def test_clip_loss_matches_hand_value() -> None:
    got = clip_loss(ECG, TEXT, torch.tensor(10.0))
    assert got.item() == pytest.approx(_hand_clip(10.0), abs=1e-5)
    # unnormalised inputs are normalised first
    assert clip_loss(3 * ECG, 2 * TEXT, 10.0).item() == pytest.approx(_hand_clip(10.0), abs=1e-5)


def test_clip_loss_clamps_logit_scale_at_100() -> None:
    text = torch.tensor([[0.6, 0.8], [0.6, 0.8]])  # similarities [[.6,.6],[.8,.8]]: a hard negative
    sims = ((0.6, 0.6), (0.8, 0.8))
    got = clip_loss(ECG, text, torch.tensor(1000.0))
    assert got.item() == pytest.approx(_hand_clip(100.0, sims), rel=1e-5)
    assert _hand_clip(1000.0, sims) > 2 * _hand_clip(100.0, sims)  # the clamp matters here


def test_logit_scale_init_and_clamp() -> None:
    ls = LogitScale()
    assert ls().item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        ls.log_scale.fill_(math.log(500.0))
    out = ls()
    assert out.item() == pytest.approx(500.0, rel=1e-6)  # not clamped in the forward pass (issue 14)
    out.backward()
    assert ls.log_scale.grad.item() == pytest.approx(500.0, rel=1e-6)  # d exp(s) / ds: still trainable
    ls.clamp_()  # the bound is applied to the parameter in place, after the optimiser step
    assert ls().item() == pytest.approx(100.0, rel=1e-6)


def test_caption_loss_ignores_padding() -> None:
    logits = torch.tensor([[[2.0, 0.0, 1.0], [5.0, -3.0, 9.0], [0.0, 1.0, 3.0]]])  # (1, 3, V=3)
    labels = torch.tensor([[1, 0, 2]])  # position 1 is padding (pad id 0)
    hand = ((_lse(2, 0, 1) - 0.0) + (_lse(0, 1, 3) - 3.0)) / 2
    assert caption_loss(logits, labels, pad_id=0).item() == pytest.approx(hand, abs=1e-5)


def test_local_loss_single_sentence_closed_form() -> None:
    """One sentence per report: attention over beats is uniform (the first softmax is over one sentence),
    so score(b, i) = temp2 * cos(sentence_i, mean beats_b) and logits = temp3 * score."""
    g = torch.Generator().manual_seed(0)
    beats = torch.randn(3, 4, 5, generator=g)
    sents = torch.randn(3, 1, 5, generator=g)
    mask = torch.ones(3, 1, dtype=torch.bool)
    got = local_alignment_loss(beats, sents, mask)
    mean_beats = beats.mean(1).tolist()
    s = sents[:, 0].tolist()

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    logit = [[10 * 5 * cos(s[i], mean_beats[b]) for i in range(3)] for b in range(3)]
    rows = [_lse(*logit[b]) - logit[b][b] for b in range(3)]
    cols = [_lse(*(logit[b][i] for b in range(3))) - logit[i][i] for i in range(3)]
    hand = (sum(rows) / 3 + sum(cols) / 3) / 2
    assert got.item() == pytest.approx(hand, abs=1e-4)


def _loop_reference(beats, sents, nsent, t1=4.0, t2=5.0, t3=10.0):
    """MELP's BeatAlignmentModule written out element by element (variable sentence counts, no padding)."""
    B, Q, _ = beats.shape
    sim = [[0.0] * B for _ in range(B)]
    for b in range(B):
        for i in range(B):
            S = nsent[i]
            dots = [[float(beats[b, q] @ sents[i, s]) for s in range(S)] for q in range(Q)]
            a1 = [[math.exp(dots[q][s] - _lse(*dots[q])) for s in range(S)] for q in range(Q)]  # softmax over sentences
            total = 0.0
            terms = []
            for s in range(S):
                col = [t1 * a1[q][s] for q in range(Q)]
                w = [math.exp(c - _lse(*col)) for c in col]  # softmax over beats
                ctx = sum(w[q] * beats[b, q] for q in range(Q))
                c = float(F.cosine_similarity(ctx, sents[i, s], dim=0))
                terms.append(t2 * c)
            total = _lse(*terms)
            sim[b][i] = t3 * total
    rows = [_lse(*sim[b]) - sim[b][b] for b in range(B)]
    cols = [_lse(*(sim[b][i] for b in range(B))) - sim[i][i] for i in range(B)]
    return (sum(rows) / B + sum(cols) / B) / 2


def test_local_loss_matches_loop_reference_and_ignores_padded_sentences() -> None:
    g = torch.Generator().manual_seed(1)
    beats = torch.randn(3, 4, 6, generator=g)
    sents = torch.randn(3, 3, 6, generator=g)
    nsent = [3, 1, 2]
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
    got = local_alignment_loss(beats, sents, mask)
    assert got.item() == pytest.approx(_loop_reference(beats, sents, nsent), abs=1e-4)
    noisy = sents.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), 6, generator=g)  # garbage in padded rows
    assert local_alignment_loss(beats, noisy, mask).item() == pytest.approx(got.item(), abs=1e-5)


def test_local_loss_drops_records_without_sentences() -> None:
    g = torch.Generator().manual_seed(2)
    beats, sents = torch.randn(3, 2, 4, generator=g), torch.randn(3, 2, 4, generator=g)
    mask = torch.tensor([[1, 1], [0, 0], [1, 0]], dtype=torch.bool)
    keep = torch.tensor([0, 2])
    expected = local_alignment_loss(beats[keep], sents[keep], mask[keep])
    assert local_alignment_loss(beats, sents, mask).item() == pytest.approx(expected.item(), abs=1e-6)
    single = local_alignment_loss(beats, sents, torch.tensor([[1, 0], [0, 0], [0, 0]], dtype=torch.bool))
    assert single.item() == 0.0


def test_unimodal_alignment_uses_fixed_temperature() -> None:
    got = unimodal_alignment_loss(ECG, TEXT)
    assert got.item() == pytest.approx(_hand_clip(1 / 0.07), abs=1e-5)


def test_losses_backpropagate() -> None:
    beats = torch.randn(2, 3, 4, requires_grad=True)
    sents = torch.randn(2, 2, 4, requires_grad=True)
    loss = local_alignment_loss(beats, sents, torch.tensor([[1, 1], [1, 0]], dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(beats.grad).all() and torch.isfinite(sents.grad).all()
    assert beats.grad.abs().sum() > 0


def test_local_alignment_scores_equal_the_explicit_context_formula() -> None:
    """The scores avoid building the (B_ecg, B_text, S, d) attended-context tensor; values and gradients equal the
    formula written with it (GLoRIA/MELP: context = attention-weighted beats, then F.cosine_similarity)."""
    from ecg_text_align.losses import local_alignment_scores

    def explicit(beats, sents, mask, t1=4.0, t2=5.0):
        m = mask.bool()
        dots = torch.einsum("bqd,isd->bisq", beats, sents)
        a = (dots.masked_fill(~m[None, :, :, None], torch.finfo(dots.dtype).min).softmax(dim=2) * t1).softmax(dim=3)
        context = torch.einsum("bisq,bqd->bisd", a, beats)
        cos = F.cosine_similarity(context, sents[None].expand_as(context), dim=-1, eps=1e-8)
        return torch.logsumexp((cos * t2).masked_fill(~m[None], float("-inf")), dim=2)

    g = torch.Generator().manual_seed(3)
    beats = torch.randn(6, 14, 32, generator=g, requires_grad=True)
    sents = torch.randn(6, 5, 32, generator=g, requires_grad=True)
    mask = torch.rand(6, 5, generator=g) > 0.4
    mask[:, 0] = True
    got, want = local_alignment_scores(beats, sents, mask), explicit(beats, sents, mask)
    assert torch.allclose(got, want, atol=1e-5)
    for a, b in zip(torch.autograd.grad(got.sum(), [beats, sents]), torch.autograd.grad(want.sum(), [beats, sents])):
        assert torch.allclose(a, b, atol=1e-5)
