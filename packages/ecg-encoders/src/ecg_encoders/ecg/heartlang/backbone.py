"""The beat-sequence transformer shared by HeartLang's VQ-HBR encoder/decoder and its sentence model.

Source: PKUDigitalHealth/HeartLang ``backbone_vqhbr.py`` (``VqhbrBackbone``) and ``modeling_pretrain.py``
(``ST_ECGFormer``), which are the same network: a bias-free Conv1d(in_dim -> width, k3, circular padding)
*across the beat sequence* embeds each token (so neighbouring beats mix), masked positions are
replaced by a learned [MASK] vector, a lead ("spatial") and a time embedding (16 rows each, 0 = padding)
are added, a learned [CLS] is prepended, a learned positional embedding of 257 rows is added, then
pre-LN blocks (qkv without bias, heads x 64 inner width, GELU MLP) and a final LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from ecg_encoders.ecg.vit1d import TransformerBlock


class BeatTransformer(nn.Module):
    """(B, N, in_dim) token features + ids -> (B, 1 + N, width) states ([CLS] first).

    ``mask_padding=False`` (HeartLang) lets padded positions take part in attention like any token;
    ``True`` hides them from attention (the [CLS] key is always visible, so no row is empty).
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        *,
        max_tokens: int = 256,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        n_ids: int = 16,
        mask_padding: bool = False,
        mask_token: bool = True,
    ) -> None:
        super().__init__()
        self.width, self.max_tokens, self.mask_padding = width, max_tokens, mask_padding
        self.token_embed = nn.Conv1d(in_dim, width, 3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.token_embed.weight, mode="fan_in", nonlinearity="leaky_relu")  # as original
        # only a masked-modelling user gets a [MASK] vector: an unused parameter breaks DDP (find_unused_parameters=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width)) if mask_token else None
        self.cls_token = nn.Parameter(torch.randn(width))
        self.pos_embed = nn.Parameter(torch.randn(1, max_tokens + 1, width))
        self.lead_embed = nn.Embedding(n_ids, width)  # original: SpatialEmbedding(num_embeddings=16)
        self.time_embed = nn.Embedding(n_ids, width)  # original: TemporalEmbedding(num_embeddings=16)
        self.dropout = nn.Dropout(emb_dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, dim_head, mlp_dim, qkv_bias=False, dropout=dropout, attn_dropout=dropout)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)

    def forward(
        self,
        x: torch.Tensor,
        lead_ids: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mask``: (B, N) bool, True = replace the token by [MASK]; ``padding_mask``: True = no beat."""
        b, n, _ = x.shape
        if n > self.max_tokens:
            raise ValueError(f"BeatTransformer: {n} tokens exceed max_tokens={self.max_tokens}")
        h = self.token_embed(x.transpose(1, 2)).transpose(1, 2)
        if mask is not None:
            if self.mask_token is None:
                raise ValueError("BeatTransformer built with mask_token=False cannot take a mask")
            h = torch.where(mask[..., None], self.mask_token.to(h.dtype), h)
        if lead_ids is not None:
            h = h + self.lead_embed(lead_ids)
        if time_ids is not None:
            h = h + self.time_embed(time_ids)
        h = torch.cat([self.cls_token.expand(b, 1, -1), h], dim=1) + self.pos_embed[:, : n + 1]
        h = self.dropout(h)
        kpm = None
        if self.mask_padding and padding_mask is not None:
            kpm = torch.cat([padding_mask.new_zeros(b, 1), padding_mask], dim=1)
        for blk in self.blocks:
            h = blk(h, kpm)
        return self.norm(h)
