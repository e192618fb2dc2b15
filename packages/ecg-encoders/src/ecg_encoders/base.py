"""What every ECG encoder returns and declares, so methods can swap towers by name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # (B, N, d) token sequence (time steps / beats / patches)
    pooled: torch.Tensor  # (B, d_pooled) one embedding per record


class ECGEncoder(nn.Module):
    """Base class: subclasses set these attributes in __init__ and implement ``forward``."""

    fs: int = 500  # expected sampling rate (Hz)
    length: int = 5000  # expected samples per lead
    width: int  # token width d
    pooled_dim: int  # width of ``pooled``

    def forward(self, x: torch.Tensor) -> EncoderOutput:  # x: (B, 12, T)
        raise NotImplementedError
