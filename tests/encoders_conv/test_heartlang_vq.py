"""VQ-HBR quantiser and model, and the masked-sentence-modelling pieces that chain the two stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ecg_encoders.ecg.heartlang import (
    HeartbeatTokenizer,
    NormEMAQuantizer,
    build_heartbeat_vq,
    build_heartlang,
    build_msm_head,
    masked_beat_loss,
    random_beat_mask,
)


@pytest.fixture(scope="module")
def tokens(spiky):
    x = spiky([np.arange(40, 1000, 85), np.arange(20, 1000, 120), np.arange(60, 1000, 70)], seed=1)
    return HeartbeatTokenizer()(torch.from_numpy(x))


def test_kmeans_init_on_first_batch_only() -> None:
    torch.manual_seed(0)
    q = NormEMAQuantizer(n_codes=4, dim=2, decay=0.5)
    assert not bool(q.initted) and (q.codebook == 0).all()
    # four well-separated directions, 25 noisy samples each
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    z = (dirs.repeat_interleave(25, 0) + 0.05 * torch.randn(100, 2))[None]
    q.eval()
    q(z)
    assert bool(q.initted)
    assert torch.allclose(q.codebook.norm(dim=1), torch.ones(4), atol=1e-5)
    # codes come from this batch: each is the normalised mean of the samples assigned to it (a Lloyd
    # fixed point; which local optimum depends on the random seeds, as in any k-means)
    zn = F.normalize(z[0], dim=-1)
    assign = (zn @ q.codebook.t()).argmax(1)
    for k in assign.unique():
        assert torch.allclose(q.codebook[k], F.normalize(zn[assign == k].mean(0), dim=0), atol=1e-4)
    assert q.cluster_size.sum() == 100
    first = q.codebook.clone()
    q(torch.randn(1, 50, 2))  # eval: no re-init, no EMA
    assert torch.equal(q.codebook, first)


def test_ema_changes_only_used_codes() -> None:
    torch.manual_seed(0)
    q = NormEMAQuantizer(n_codes=8, dim=4, decay=0.9, kmeans_init=False)
    q.train()
    before = q.codebook.clone()
    target = before[[2, 5]]
    z = (target.repeat_interleave(3, 0) + 0.1 * torch.randn(6, 4))[None]  # near codes 2 and 5 only
    _, _, ids = q(z)
    assert set(ids.flatten().tolist()) == {2, 5}
    changed = (q.codebook != before).any(dim=1)
    assert changed.tolist() == [i in (2, 5) for i in range(8)]
    # the used codes moved towards their assigned features' normalised mean, and stay unit norm
    zn = F.normalize(z[0], dim=-1)
    mean2 = F.normalize(zn[ids[0] == 2].mean(0), dim=0)
    assert (q.codebook[2] @ mean2) > (before[2] @ mean2)
    assert torch.allclose(q.codebook.norm(dim=1), torch.ones(8), atol=1e-5)


def test_padding_excluded_from_statistics() -> None:
    q = NormEMAQuantizer(n_codes=4, dim=3, kmeans_init=False).train()
    before = q.codebook.clone()
    z = torch.randn(1, 5, 3)
    valid = torch.zeros(1, 5, dtype=torch.bool)
    q(z, valid)
    assert torch.equal(q.codebook, before) and q.cluster_size.sum() == 0


def test_straight_through_gradient() -> None:
    q = NormEMAQuantizer(n_codes=16, dim=8, kmeans_init=False).eval()
    z = torch.randn(2, 5, 8, requires_grad=True)
    z_q, _, ids = q(z)
    assert torch.allclose(z_q, q.codebook[ids], atol=1e-6)  # forward value: the codes
    w = torch.randn_like(z_q)
    (z_q * w).sum().backward()
    zz = z.detach().clone().requires_grad_(True)
    (F.normalize(zz, dim=-1) * w).sum().backward()  # backward: as if z_q were normalise(z)
    assert torch.allclose(z.grad, zz.grad, atol=1e-6)


def test_reconstruction_loss_decreases(tokens) -> None:
    torch.manual_seed(0)
    vq = build_heartbeat_vq("tiny").train()
    opt = torch.optim.Adam(vq.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        out = vq(tokens)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.rec_loss.item())
    assert bool(vq.quantizer.initted)
    assert losses[-1] < 0.7 * losses[0]
    assert out.reconstruction.shape == tokens.beats.shape and out.ids.shape == tokens.padding_mask.shape


def test_codebook_ids_are_read_only_and_mark_padding(tokens) -> None:
    vq = build_heartbeat_vq("tiny").train()
    vq(tokens)  # k-means init
    before = vq.quantizer.codebook.clone()
    ids = vq.codebook_ids(tokens)
    assert vq.training and torch.equal(vq.quantizer.codebook, before)
    assert (ids[tokens.padding_mask] == -100).all()
    real = ids[~tokens.padding_mask]
    assert real.min() >= 0 and real.max() < vq.n_codes


def test_random_beat_mask() -> None:
    pad = torch.zeros(3, 10, dtype=torch.bool)
    pad[1, 6:] = True
    pad[2, :] = True
    g = torch.Generator().manual_seed(0)
    m = random_beat_mask(pad, 0.5, generator=g)
    assert m.sum(1).tolist() == [5, 3, 0] and not (m & pad).any()
    m2 = random_beat_mask(pad, 0.5, exclude_padding=False, generator=g)
    assert m2.sum(1).tolist() == [5, 5, 5]  # the original: N - int(N * (1 - ratio)) per row


def test_masked_sentence_step_chains_the_two_stages(tokens) -> None:
    torch.manual_seed(0)
    vq = build_heartbeat_vq("tiny")
    vq(tokens)
    enc, head = build_heartlang("tiny"), build_msm_head("tiny")
    ids = vq.codebook_ids(tokens)
    mask = random_beat_mask(tokens.padding_mask, 0.5)
    out = enc.encode_tokens(tokens, mask)
    loss, acc = masked_beat_loss(head, out.tokens, mask, ids)
    assert torch.isfinite(loss) and 0 <= float(acc) <= 1
    loss.backward()
    assert enc.backbone.mask_token.grad is not None and enc.backbone.mask_token.grad.abs().sum() > 0
    assert head.proj.weight.grad is not None
    # a masked beat is replaced by [MASK]: with every position masked the beats no longer matter
    # (with partial masks, neighbours still see a masked beat through the k=3 token convolution, as in
    # the original)
    enc.eval()
    t2 = type(tokens)(**{**tokens.__dict__, "beats": tokens.beats + 1.0})
    full = torch.ones_like(mask)
    with torch.no_grad():
        s1, s2 = enc.encode_tokens(tokens, full), enc.encode_tokens(t2, full)
        s3 = enc.encode_tokens(t2)
    assert torch.allclose(s1.tokens, s2.tokens, atol=1e-5) and torch.allclose(s1.pooled, s2.pooled, atol=1e-5)
    assert not torch.allclose(s1.pooled, s3.pooled, atol=1e-3)


def test_mask_padding_isolates_real_tokens(tokens) -> None:
    torch.manual_seed(0)
    enc = build_heartlang("tiny", mask_padding=True).eval()
    t2 = type(tokens)(**{**tokens.__dict__, "beats": tokens.beats.clone()})
    pad = tokens.padding_mask.clone()
    # keep the padding slots next to real beats: the k=3 circular token convolution reads them (slot 255
    # neighbours slot 0)
    first_pad = (~pad).sum(1)
    pad[torch.arange(pad.shape[0]), first_pad] = False
    pad[:, -1] = False
    t2.beats[pad] = torch.randn(int(pad.sum()), t2.beats.shape[-1])
    with torch.no_grad():
        a, b = enc.encode_tokens(tokens), enc.encode_tokens(t2)
        c = build_heartlang("tiny", mask_padding=False).eval()
    assert torch.allclose(a.pooled, b.pooled, atol=1e-5)  # [CLS] never attends to padding
    real = ~tokens.padding_mask
    assert torch.allclose(a.tokens[real], b.tokens[real], atol=1e-5)
    c.load_state_dict(enc.state_dict())
    with torch.no_grad():  # the original (padding attended) does see the change
        assert not torch.allclose(c.encode_tokens(tokens).pooled, c.encode_tokens(t2).pooled, atol=1e-5)


def test_quantiser_runs_in_float32_for_low_precision_features() -> None:
    torch.manual_seed(0)
    q = NormEMAQuantizer(n_codes=16, dim=8, kmeans_init=False).eval()
    z = torch.randn(2, 5, 8)
    _, _, ids32 = q(z)
    z_q, loss, ids16 = q(z.bfloat16())
    assert z_q.dtype == torch.float32 and torch.isfinite(loss)
    assert (ids16 == ids32).float().mean() > 0.8  # bfloat16 rounding may flip near-ties only
