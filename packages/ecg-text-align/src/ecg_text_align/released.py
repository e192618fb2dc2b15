"""Released weights (the authors' files) as encoders ecg-eval can score.

``ReleasedEncoder`` wraps an ``ecg_encoders.released.Released``: it applies the released model's own input
conventions (MIMIC lead order, per-lead z-score for ECG-FM) on top of the harness's preset, and its card
says where the weights came from (name ``"<method> (released weights)"``, the file's hash, the source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_encoders.released import Released, convert_released
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_text_align.pretrained import file_hash

RELEASED_SUFFIX = " (released weights)"


class ReleasedEncoder(nn.Module):
    """Encoder protocol over released weights; ECG only (the released files carry no usable text tower)."""

    def __init__(self, released: Released, *, name: str | None = None, checkpoint_hash: str = "", source: str = ""):
        super().__init__()
        self.released = released
        self.model = released.model
        self.adapter = released.adapter()
        self.input_spec = InputSpec(
            preset=released.preset, fs=released.fs, length=released.length, task_presets=released.task_presets
        )
        conv = released.conversion
        self.card = EncoderCard(
            name=name or f"{released.method}{RELEASED_SUFFIX}",
            checkpoint_hash=checkpoint_hash,
            n_parameters=sum(p.numel() for p in self.model.parameters()),
            pretrained_on=tuple(released.pretrained_on),
            preset="released",
            extra={
                "weights_source": source,
                "format": released.fmt,
                "provenance": released.provenance,
                "lead_order": list(released.lead_order),
                "scaling": released.scaling,
                "tensors_consumed": len(conv.consumed),
                "tensors_ignored": sorted(conv.ignored),
            },
        )
        self.eval()

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        dev = next(self.model.parameters()).device
        return self.released.features(self.model, self.adapter(x.to(dev, torch.float32)))


def load_released(path: str | Path, fmt: str | None = None, *, name: str | None = None) -> ReleasedEncoder:
    """A released file or directory (e.g. a hub snapshot) -> ``ReleasedEncoder``."""
    from ecg_encoders.released.base import weights_file

    f = weights_file(path)
    rel = convert_released(f, fmt=fmt)
    return ReleasedEncoder(rel, name=name, checkpoint_hash=file_hash(f), source=str(path))


def load_any(path: str | Path, **_: Any) -> Any:
    """An exported directory (``from_pretrained``) or a released file/directory; for ``method.load``-style use."""
    from ecg_text_align.pretrained import from_pretrained, is_export_dir

    return from_pretrained(path) if is_export_dir(path) else load_released(path)
