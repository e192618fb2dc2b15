"""Building blocks: GRN, DropPath, ESI's LayerNorm variant, MERL's attention pooling, stochastic-depth rules."""

from __future__ import annotations

import pytest
import torch

from ecg_encoders.ecg.convnextv2_1d import GRN, ChannelLayerNorm, ConvNeXtV2Block, build_convnextv2_1d
from ecg_encoders.ecg.resnet1d import AttentionPool1d, build_resnet18_1d, n_positions
from ecg_encoders.ecg.vit1d import DropPath, build_vit1d


def test_grn_is_identity_at_init_and_follows_its_formula() -> None:
    torch.manual_seed(0)
    g = GRN(6)
    x = torch.randn(2, 10, 6)
    assert torch.equal(g(x), x)  # gamma = beta = 0
    with torch.no_grad():
        g.gamma.fill_(0.5)
        g.beta.fill_(0.1)
    gx = x.pow(2).sum(dim=1, keepdim=True).sqrt()  # L2 over time, per channel
    nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)  # relative to the mean over channels
    assert torch.allclose(g(x), 0.5 * x * nx + 0.1 + x, atol=1e-6)
    assert torch.allclose(nx.mean(-1), torch.ones(2, 1), atol=1e-5)


def test_drop_path_identity_in_eval_and_per_sample_in_train() -> None:
    torch.manual_seed(0)
    dp = DropPath(0.5)
    x = torch.randn(64, 3, 5)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    kept = (y != 0).flatten(1).all(1)
    dropped = (y == 0).flatten(1).all(1)
    assert bool((kept | dropped).all())  # whole samples are dropped or kept
    assert 0 < int(dropped.sum()) < 64
    assert torch.allclose(y[kept], x[kept] / 0.5)  # kept samples are rescaled by 1 / keep
    assert torch.equal(DropPath(0.0).train()(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_convnext_block_is_identity_when_its_branch_is_dropped() -> None:
    blk = ConvNeXtV2Block(8, drop_path=0.999999).train()
    x = torch.randn(4, 8, 20)
    torch.manual_seed(1)
    assert torch.equal(blk(x), x)


def test_stochastic_depth_rises_linearly() -> None:
    m = build_convnextv2_1d("tiny", drop_path_rate=0.3)
    rates = [blk.drop_path.p for stage in m.stages for blk in stage]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)
    v = build_vit1d("tiny", drop_path_rate=0.2)
    assert [b.drop_path1.p for b in v.blocks] == pytest.approx([0.0, 0.2])


def test_channel_layernorm_variants() -> None:
    x = torch.randn(2, 5, 30) * 3 + 1
    ln = ChannelLayerNorm(5)
    y = ln(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 30), atol=1e-5)  # normalised over channels
    esi = ChannelLayerNorm(5, over="time")
    ref = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)  # ESI's channels_first arithmetic
    assert torch.allclose(esi(x), ref, atol=1e-5)
    out = build_convnextv2_1d("tiny", downsample_norm="time", length=1000)(torch.randn(2, 12, 1000))
    assert out.tokens.shape == (2, 31, 64)


def test_resnet_positions_and_pooling_queries() -> None:
    assert n_positions(5000) == 313 and n_positions(1000) == 63
    torch.manual_seed(0)
    tokens = torch.randn(3, 7, 8)
    for query in ("cls", "mean"):
        pool = AttentionPool1d(7, 8, heads=2, out_dim=4, query=query)
        assert pool(tokens).shape == (3, 4)
    assert AttentionPool1d(7, 8, 2, query="mean").cls_token is None
    with pytest.raises(ValueError):
        AttentionPool1d(7, 8, 2, query="max")


def test_resnet_pooled_is_permutation_sensitive_through_positions() -> None:
    """The pool adds a positional embedding, so it is not a plain set function of the tokens."""
    torch.manual_seed(0)
    pool = AttentionPool1d(6, 8, heads=2)
    t = torch.randn(1, 6, 8)
    assert not torch.allclose(pool(t), pool(t.flip(1)), atol=1e-5)


def test_batchnorm_encoder_is_deterministic_in_eval() -> None:
    m = build_resnet18_1d("tiny", length=1000).eval()
    x = torch.randn(2, 12, 1000)
    with torch.no_grad():
        assert torch.equal(m(x).pooled, m(x).pooled)
        assert torch.allclose(m(x[:1]).pooled, m(x).pooled[:1], atol=1e-5)  # no batch coupling in eval
