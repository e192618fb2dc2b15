"""MERL's ViT-1D ECG encoder, plus the pre-LN transformer block and DropPath shared by our conv/beat encoders.

Source: cheliu-computation/MERL-ICML2024, ``utils/vit1d.py`` (itself after lucidrains' ``vit_1d``):
a bias-free Conv1d patch embedding (kernel = stride = patch size), a learned positional embedding,
pre-LN blocks (LayerNorm inside each residual branch), stochastic depth rising linearly over depth,
then global average pooling and a final LayerNorm. MERL's config selects ``vit_tiny``
(``pretrain/config.yaml``: ``ecg_model: vit_tiny``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecg_data.registry import UnknownNameError
from ecg_encoders.base import ECGEncoder, EncoderOutput


def _linear_rates(max_rate: float, n: int) -> list[float]:
    """Stochastic-depth rates 0 .. max_rate over n blocks, in plain floats (works on the meta device)."""
    return [max_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


class DropPath(nn.Module):
    """Stochastic depth per sample (timm's ``DropPath``); identity in eval mode or with p == 0."""

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        if self.scale_by_keep:
            mask = mask / keep
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SelfAttention(nn.Module):
    """Multi-head self-attention on ``F.scaled_dot_product_attention`` (fused kernels on CPU and GPU).

    ``inner = heads * dim_head`` may differ from ``dim`` (HeartLang: 8 x 64 = 512 at width 768), as in
    the originals' lucidrains-style attention.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        qkv_bias: bool = True,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        # lucidrains' rule: no output projection only when a single head already has width dim
        self.proj = nn.Identity() if (heads == 1 and dim_head == dim) else nn.Linear(inner, dim)
        self.attn_dropout = attn_dropout
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``key_padding_mask``: (B, N) bool, True where a token must not be attended to."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        mask = None if key_padding_mask is None else (~key_padding_mask)[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        return self.drop(self.proj(out.transpose(1, 2).reshape(b, n, -1)))


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))`` (MERL and HeartLang)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dim_head, qkv_bias, attn_dropout, dropout)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim), nn.Dropout(dropout)
        )
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x), key_padding_mask))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


#: MERL ``utils/vit1d.py``: ``vit_tiny`` = width 192, depth 12, heads 3, mlp 768, patch 50 on 12 x 5000;
#: ``dim_head`` is the ViT default 64 (3 x 64 = 192). ``tiny`` is our CPU preset, not MERL's vit_tiny.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(width=32, depth=2, heads=2, dim_head=16, mlp_dim=64, patch_size=50, fs=500, length=5000),
    "merl_vit_tiny": dict(width=192, depth=12, heads=3, dim_head=64, mlp_dim=768, patch_size=50, fs=500, length=5000),
}
PAPER_PRESETS: list[str] = ["merl_vit_tiny"]


class ViT1D(ECGEncoder):
    """Patch tokens (B, T/patch, width); pooled = LayerNorm(mean of tokens) as in MERL's ``forward_encoding``."""

    def __init__(
        self,
        *,
        width: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        patch_size: int,
        fs: int = 500,
        length: int = 5000,
        in_channels: int = 12,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if length % patch_size:
            raise ValueError(f"ViT1D: length {length} is not a multiple of patch_size {patch_size}")
        self.fs, self.length, self.width, self.pooled_dim = fs, length, width, width
        self.in_channels = in_channels
        self.patch_embed = nn.Conv1d(in_channels, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.pos_embed = nn.Parameter(torch.randn(1, length // patch_size, width))  # MERL: torch.randn
        self.dropout = nn.Dropout(dropout)
        rates = _linear_rates(drop_path_rate, depth)  # MERL: linear stochastic-depth rule
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, dim_head, mlp_dim, qkv_bias, dropout, attn_dropout, r) for r in rates
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        _check_input(x, self.in_channels, self.length, type(self).__name__)
        h = self.dropout(self.patch_embed(x).transpose(1, 2) + self.pos_embed)
        for blk in self.blocks:
            h = blk(h)
        return EncoderOutput(tokens=h, pooled=self.norm(h.mean(dim=1)))


def _check_input(x: torch.Tensor, channels: int, length: int, who: str) -> None:
    """Shape errors name the encoder and what it expects (a wrong preset is the usual cause)."""
    if x.ndim != 3 or x.shape[1] != channels or x.shape[2] != length:
        raise ValueError(f"{who} expects input (B, {channels}, {length}), got {tuple(x.shape)}")


def _resolve(presets: dict[str, dict[str, Any]], preset: str, overrides: dict[str, Any], who: str) -> dict[str, Any]:
    if preset not in presets:
        raise UnknownNameError(f"unknown {who} preset {preset!r}; valid presets: {', '.join(presets)}")
    return {**presets[preset], **overrides}


def build_vit1d(preset: str = "tiny", **overrides: Any) -> ViT1D:
    return ViT1D(**_resolve(PRESETS, preset, overrides, "vit1d"))
