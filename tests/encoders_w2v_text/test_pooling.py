"""Attentional pooler (CoCa / open_clip style)."""

from __future__ import annotations

import torch

from ecg_encoders.pooling import AttentionalPooler


def test_shapes_with_narrow_queries_over_wide_context() -> None:
    torch.manual_seed(0)
    pool = AttentionalPooler(d_model=32, context_dim=48, n_queries=5, n_heads=4)
    out = pool(torch.randn(3, 17, 48))
    assert out.shape == (3, 5, 32)


def test_padding_mask_ignores_padded_tokens() -> None:
    torch.manual_seed(0)
    pool = AttentionalPooler(d_model=16, context_dim=16, n_queries=3, n_heads=2).eval()
    x = torch.randn(1, 10, 16)
    pad = torch.zeros(1, 10, dtype=torch.bool)
    pad[0, 6:] = True
    y = x.clone()
    y[0, 6:] = torch.randn(4, 16) * 10  # change only the padded tokens
    with torch.no_grad():
        a, b = pool(x, pad), pool(y, pad)
        c = pool(y)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-3)
