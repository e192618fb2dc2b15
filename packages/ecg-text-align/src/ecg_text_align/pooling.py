"""Attentional pooler (CoCa / open_clip), as MELP puts on top of its ECG encoder.

Kept here (not imported from ``ecg_encoders``) so MELP checkpoints keep stable parameter names whatever
the encoders package exposes.
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionalPooler(nn.Module):
    """n learned queries cross-attend to the encoder tokens: (B, N, d_ctx) -> (B, n_queries, d_model)."""

    def __init__(self, d_model: int, context_dim: int, n_head: int = 8, n_queries: int = 256):
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.attn = nn.MultiheadAttention(d_model, n_head, kdim=context_dim, vdim=context_dim, batch_first=True)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_k(x)
        q = self.ln_q(self.query).unsqueeze(0).expand(x.shape[0], -1, -1)
        return self.attn(q, x, x, need_weights=False)[0]
