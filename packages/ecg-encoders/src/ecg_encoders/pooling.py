"""Attentional pooler (CoCa, Yu et al. 2022; open_clip ``AttentionalPooler``).

Learned queries attend over a token sequence: MELP pools its ECG tower with one (128 queries, width
768) for the captioning decoder and one (12 queries, width 256) whose outputs are the "beat"
embeddings for local alignment and whose mean is the global embedding (melp/models/ecgfm_model.py).
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionalPooler(nn.Module):
    def __init__(self, d_model: int, context_dim: int, n_queries: int = 256, n_heads: int = 8) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        # kdim/vdim let a narrow pooler read a wider tower (MELP: 256-wide queries over 768-wide tokens)
        self.attn = nn.MultiheadAttention(d_model, n_heads, kdim=context_dim, vdim=context_dim, batch_first=True)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)
        self.n_queries = n_queries
        self.d_model = d_model

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, context_dim) -> (B, n_queries, d_model); ``key_padding_mask`` True = ignore."""
        if x.dim() != 3:
            raise ValueError(
                f"AttentionalPooler expects (batch, tokens, {self.ln_k.normalized_shape[0]}), got {tuple(x.shape)}"
            )
        x = self.ln_k(x)
        q = self.ln_q(self.query).unsqueeze(0).expand(x.shape[0], -1, -1)
        return self.attn(q, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
