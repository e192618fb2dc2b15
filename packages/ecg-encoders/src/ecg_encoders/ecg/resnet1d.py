"""MERL's ResNet18-1D ECG encoder with its attention pooling.

Source: cheliu-computation/MERL-ICML2024, ``utils/resnet1d.py`` (backbone) and ``utils/utils_builder.py``
(``downconv`` + ``AttentionPool2d``). Backbone: Conv1d(12, 64, k7, s2, p3, no bias) + BN + ReLU (no max-pool),
four stages of two basic blocks (k3 convs, BN, 1x1-conv shortcut when shape changes) with widths
64/128/256/512 and strides 1/2/2/2: 5000 samples -> 313 positions. Pooling: a 1x1 conv 512 -> 256
(``downconv``), then one multi-head attention (4 heads) whose single query is a learned [CLS] token,
over [CLS] + the 313 positions, each plus a learned positional embedding, and a linear ``c_proj``.

Note: CLIP's ``AttentionPool2d`` queries with the *mean* token; MERL's version replaces it with a learned
[CLS] token. ``query="cls"`` (default) follows MERL; ``query="mean"`` gives CLIP's variant.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecg_encoders.base import ECGEncoder, EncoderOutput
from ecg_encoders.ecg.vit1d import _check_input, _resolve


class BasicBlock1d(nn.Module):
    """ResNet basic block, 1-D (MERL ``BasicBlock``)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet1d(nn.Module):
    """Stem + four stages of basic blocks; returns (B, C_last, T') feature maps."""

    def __init__(
        self, widths: tuple[int, ...], blocks: tuple[int, ...], in_channels: int = 12, stem_kernel: int = 7
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, widths[0], stem_kernel, stride=2, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            for j in range(n):
                layers.append(BasicBlock1d(cin, w, stride if j == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class AttentionPool1d(nn.Module):
    """MERL's ``AttentionPool2d`` on a 1-D sequence: one query attends over [query] + tokens."""

    def __init__(self, n_tokens: int, dim: int, heads: int, out_dim: int | None = None, query: str = "cls") -> None:
        super().__init__()
        if query not in ("cls", "mean"):
            raise ValueError(f"AttentionPool1d query must be 'cls' or 'mean', got {query!r}")
        self.query = query
        # MERL: torch.randn(1, spacial_dim + 1, embed_dim) / embed_dim and a randn [CLS] token
        self.pos_embed = nn.Parameter(torch.randn(1, n_tokens + 1, dim) / dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim)) if query == "cls" else None
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)  # uses SDPA internally
        self.proj = nn.Linear(dim, out_dim or dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, d) -> (B, out_dim)."""
        b = tokens.shape[0]
        first = self.cls_token.expand(b, -1, -1) if self.cls_token is not None else tokens.mean(1, keepdim=True)
        seq = torch.cat([first, tokens], dim=1) + self.pos_embed
        out, _ = self.attn(seq[:, :1], seq, seq, need_weights=False)
        return self.proj(out[:, 0])


def n_positions(length: int, n_stages: int = 4) -> int:
    """Positions after the stride-2 stem and the three stride-2 stages: ceil(length / 2) four times."""
    for _ in range(n_stages):
        length = (length + 1) // 2
    return length


#: MERL ``utils/resnet1d.py`` ResNet18 and ``utils/utils_builder.py`` (downconv 512 -> projection_size 256,
#: AttentionPool2d spacial_dim=313, num_heads=4; ``pretrain/config.yaml`` projection_size: 256).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1), proj_dim=32, pool_heads=2, fs=500, length=5000),
    "merl": dict(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), proj_dim=256, pool_heads=4, fs=500, length=5000),
}
PAPER_PRESETS: list[str] = ["merl"]


class ResNet18_1D(ECGEncoder):
    """tokens = ``downconv`` features (B, 313, 256); pooled = attention-pooled (B, 256).

    MERL's uni-modal alignment reads ``tokens.mean(1)`` (its ``avgpool(downconv(...))``); its CLIP branch
    reads ``pooled``.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        proj_dim: int,
        pool_heads: int,
        fs: int = 500,
        length: int = 5000,
        in_channels: int = 12,
        query: str = "cls",
    ) -> None:
        super().__init__()
        self.fs, self.length, self.width, self.pooled_dim = fs, length, proj_dim, proj_dim
        self.in_channels = in_channels
        self.backbone = ResNet1d(tuple(widths), tuple(blocks), in_channels)
        self.downconv = nn.Conv1d(self.backbone.out_channels, proj_dim, kernel_size=1)
        self.n_tokens = n_positions(length)
        self.pool = AttentionPool1d(self.n_tokens, proj_dim, pool_heads, proj_dim, query=query)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        _check_input(x, self.in_channels, self.length, type(self).__name__)
        tokens = self.downconv(self.backbone(x)).transpose(1, 2)
        return EncoderOutput(tokens=tokens, pooled=self.pool(tokens))


def build_resnet18_1d(preset: str = "tiny", **overrides: Any) -> ResNet18_1D:
    return ResNet18_1D(**_resolve(PRESETS, preset, overrides, "resnet18_1d"))
