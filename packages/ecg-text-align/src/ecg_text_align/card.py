"""Duck-typed twins of ``ecg_eval.protocol.InputSpec`` / ``EncoderCard``.

ecg-text-align must not depend on ecg-eval (arrows only point down, see DESIGN.md); the harness reads these
by attribute, so same field names are all that is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    preset: str  # ecg_data preprocessing preset name, e.g. "melp"
    fs: int
    length: int
    #: task or dataset name -> preset name for downstream inputs (``ecg_eval.protocol.preset_for``); sorted pairs
    task_presets: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_presets", _pairs(self.task_presets))


def _pairs(mapping: Mapping[str, str] | Any) -> tuple[tuple[str, str], ...]:
    """As ``ecg_eval.protocol.task_preset_pairs`` (duplicated: no import of ecg-eval from here)."""
    items = mapping.items() if isinstance(mapping, Mapping) else (mapping or ())
    return tuple(sorted((str(k), str(v)) for k, v in items))


@dataclass(frozen=True)
class EncoderCard:
    name: str
    checkpoint_hash: str
    n_parameters: int  # the scored encoder: the modules encode_ecg uses
    pretrained_on: tuple[str, ...] = field(default_factory=tuple)
    preset: str = "tiny"
    extra: dict = field(default_factory=dict)
    n_parameters_training: int | None = None  # the whole training model (text tower, decoders, heads, ...)
