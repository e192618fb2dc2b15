"""Duck-typed twins of ``ecg_eval.protocol.InputSpec`` / ``EncoderCard``.

ecg-text-align must not depend on ecg-eval (arrows only point down, see DESIGN.md); the harness reads these
by attribute, so same field names are all that is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InputSpec:
    preset: str  # ecg_data preprocessing preset name, e.g. "melp"
    fs: int
    length: int


@dataclass(frozen=True)
class EncoderCard:
    name: str
    checkpoint_hash: str
    n_parameters: int  # the scored encoder: the modules encode_ecg uses
    pretrained_on: tuple[str, ...] = field(default_factory=tuple)
    preset: str = "tiny"
    extra: dict = field(default_factory=dict)
    n_parameters_training: int | None = None  # the whole training model (text tower, decoders, heads, ...)
