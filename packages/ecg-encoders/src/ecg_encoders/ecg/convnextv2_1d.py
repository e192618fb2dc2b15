"""ESI's ConvNeXt-V2-1D ECG encoder.

Source: comp-well-org/ESI, ``model/convnextv2.py`` (ConvNeXt V2 of Woo et al. 2023 adapted to 1-D).
Stem Conv1d(12, d0, k4, s4) + LayerNorm; three downsampling layers LayerNorm + Conv1d(k2, s2); blocks
``x + DropPath(pw2(GRN(GELU(pw1(LN(dwconv7(x)))))))`` with 4x expansion; stochastic-depth rate rising
linearly over all blocks; output LayerNorm(mean over time). ESI trains ``convnextv2_base`` (README
command line and ``export_model.py`` save ``convnext_base``), with 12 input leads of 5000 samples
at 500 Hz; the classification head is unused there (``return_embedding=True``) and absent here.

Preset naming: ``tiny`` is our CPU preset; ConvNeXt-V2's own "tiny" size is ``convnext_tiny``.

ESI quirk (not reproduced by default): its ``channels_first`` LayerNorm (stem and downsampling layers)
normalises each channel over *time* with the unbiased std (``(x - mean_t) / (std_t + eps)``), an
instance norm, not the channel LayerNorm of ConvNeXt. ``downsample_norm="time"`` reproduces it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecg_encoders.base import ECGEncoder, EncoderOutput
from ecg_encoders.ecg.vit1d import DropPath, _check_input, _linear_rates, _resolve


class ChannelLayerNorm(nn.Module):
    """LayerNorm of (B, C, T) maps over C (ConvNeXt's ``channels_first``), or over T with ``over="time"`` (ESI)."""

    def __init__(self, channels: int, eps: float = 1e-6, over: str = "channel") -> None:
        super().__init__()
        if over not in ("channel", "time"):
            raise ValueError(f"ChannelLayerNorm over must be 'channel' or 'time', got {over!r}")
        self.over, self.eps = over, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.over == "channel":
            return F.layer_norm(x.transpose(1, 2), x.shape[1:2], self.weight, self.bias, self.eps).transpose(1, 2)
        mean, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True)  # ESI's exact arithmetic
        return (x - mean) / (std + self.eps) * self.weight[:, None] + self.bias[:, None]


class GRN(nn.Module):
    """Global response normalisation on channels-last (B, T, C): ``gamma * (x * N(x)) + beta + x``.

    ``G(x)`` = L2 norm of each channel over time; ``N(x)`` = G divided by its mean over channels, so
    channels compete. gamma = beta = 0 at init, making the layer the identity (ConvNeXt V2, Sec. 3.2).
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, drop_path: float = 0.0, kernel_size: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.pwconv2(self.grn(self.act(self.pwconv1(h))))
        return x + self.drop_path(h.transpose(1, 2))


#: ConvNeXt V2 sizes as in ESI ``model/convnextv2.py`` (= facebookresearch/ConvNeXt-V2 ``convnextv2.py``).
_SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), fs=500, length=5000),
    **{k: dict(depths=d, dims=w, fs=500, length=5000) for k, (d, w) in _SIZES.items()},
}
#: ESI trains convnextv2_base (README usage line; export_model.py saves "convnext_base").
PAPER_PRESETS: list[str] = ["base"]


class ConvNeXtV2_1D(ECGEncoder):
    """tokens = last-stage map (B, T/32, dims[-1]); pooled = LayerNorm(mean over time) as in ESI."""

    def __init__(
        self,
        *,
        depths: tuple[int, ...],
        dims: tuple[int, ...],
        fs: int = 500,
        length: int = 5000,
        in_channels: int = 12,
        drop_path_rate: float = 0.0,
        kernel_size: int = 7,
        downsample_norm: str = "channel",
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(dims) != 4:
            raise ValueError(f"ConvNeXtV2_1D needs 4 stages, got depths={depths} dims={dims}")
        self.fs, self.length, self.width, self.pooled_dim = fs, length, dims[-1], dims[-1]
        self.in_channels = in_channels
        self.downsample = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv1d(in_channels, dims[0], 4, stride=4), ChannelLayerNorm(dims[0], over=downsample_norm)
                )
            ]
            + [
                nn.Sequential(
                    ChannelLayerNorm(dims[i], over=downsample_norm), nn.Conv1d(dims[i], dims[i + 1], 2, stride=2)
                )
                for i in range(3)
            ]
        )
        rates = _linear_rates(drop_path_rate, sum(depths))
        self.stages = nn.ModuleList()
        for i, n in enumerate(depths):
            start = sum(depths[:i])
            self.stages.append(
                nn.Sequential(*(ConvNeXtV2Block(dims[i], rates[start + j], kernel_size) for j in range(n)))
            )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):  # ESI / ConvNeXt: trunc_normal(std=.02), zero bias
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        _check_input(x, self.in_channels, self.length, type(self).__name__)
        for down, stage in zip(self.downsample, self.stages, strict=True):
            x = stage(down(x))
        return EncoderOutput(tokens=x.transpose(1, 2), pooled=self.norm(x.mean(-1)))


def build_convnextv2_1d(preset: str = "tiny", **overrides: Any) -> ConvNeXtV2_1D:
    return ConvNeXtV2_1D(**_resolve(PRESETS, preset, overrides, "convnextv2_1d"))
