"""Post-LN transformer of the wav2vec2 / fairseq-signals family.

Why our own layer instead of ``nn.TransformerEncoderLayer``: the fairseq-signals block normalises
*after* each residual (``layer_norm_first=False``, fairseq_signals_backbone/modules/
transformer_encoder_layer.py) and the whole stack starts with one LayerNorm over the input
(modules/transformer_encoder.py); the attention can switch between PyTorch's fused
``scaled_dot_product_attention`` and an explicit softmax(QK^T)V so the perf benchmark can compare them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ecg_encoders.cpu_dropout import attention, math_attention


class SelfAttention(nn.Module):
    """Multi-head self-attention; ``fused`` selects ``F.scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, fused: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.dropout = dropout
        self.fused = fused
        #: integer-draw dropout mask on CPU (ecg_encoders.cpu_dropout; the trainer's ``perf.fast_cpu_dropout``)
        self.fast_cpu_dropout = False
        # one (d, 3d) projection = fairseq's separate q/k/v projections with biases (same parameter count)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask = None
        if key_padding_mask is not None:  # (B, N) True = padding -> boolean "may attend" mask
            mask = (~key_padding_mask)[:, None, None, :]
        p = self.dropout if self.training else 0.0
        if self.fused:
            y = attention(q, k, v, attn_mask=mask, dropout_p=p, fast=self.fast_cpu_dropout)
        else:
            y = math_attention(q, k, v, attn_mask=mask, dropout_p=p, training=self.training, fast=self.fast_cpu_dropout)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class PostLNLayer(nn.Module):
    """x = LN(x + attn(x)); x = LN(x + fc2(gelu(fc1(x)))) (fairseq ``layer_norm_first=False``)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads, attention_dropout, fused)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.activation_dropout = nn.Dropout(activation_dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.self_attn_layer_norm(x + self.dropout(self.self_attn(x, key_padding_mask)))
        h = self.fc2(self.activation_dropout(F.gelu(self.fc1(x))))
        return self.final_layer_norm(x + self.dropout(h))


class PostLNTransformer(nn.Module):
    """LayerNorm + dropout on the input, then ``layers`` post-LN blocks (fairseq TransformerEncoder)."""

    def __init__(
        self,
        dim: int,
        layers: int,
        heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layerdrop: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.layerdrop = layerdrop
        #: recompute each block in backward instead of keeping its activations (memory option, same gradients)
        self.activation_checkpointing = False
        self.layers = nn.ModuleList(
            PostLNLayer(dim, heads, ffn_dim, dropout, attention_dropout, activation_dropout, fused)
            for _ in range(layers)
        )

    def set_fused_attention(self, fused: bool) -> None:
        for layer in self.layers:
            layer.self_attn.fused = fused

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dropout(self.layer_norm(x))
        for layer in self.layers:
            # LayerDrop (fairseq encoder_layerdrop): skip a whole layer at random while training
            if self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop:
                continue
            if self.activation_checkpointing and torch.is_grad_enabled():
                x = checkpoint(layer, x, key_padding_mask, use_reentrant=False)
            else:
                x = layer(x, key_padding_mask)
        return x
