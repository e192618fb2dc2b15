"""The encoder protocol: the only thing ecg-eval knows about a method.

Any object with ``encode_ecg`` (and optionally ``encode_text``), an ``input_spec`` and a ``card`` can be
scored; ecg-eval never imports a method. Optional capabilities open more modes: ``encode_text`` (zero-shot,
retrieval), ``generate_report`` (report generation), ``embed_ecg`` on an ``nn.Module`` (fine-tuning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class InputSpec:
    """How the harness must prepare inputs: a named ecg-data preprocessing preset plus its rate/length."""

    preset: str  # a name in ecg_data.preprocess.PRESETS, e.g. "melp", "merl", "esi", "heartlang"
    fs: int
    length: int  # samples per lead


@dataclass(frozen=True)
class EncoderCard:
    """Identity of a scored encoder, copied into every result file."""

    name: str  # method name, e.g. "melp"
    checkpoint_hash: str  # sha256 (first 16 hex) of the checkpoint file, or of the config for random init
    n_parameters: int  # the scored encoder: parameters of the modules encode_ecg uses
    pretrained_on: tuple[str, ...] = field(default_factory=tuple)  # dataset names, e.g. ("synth-mimic",)
    preset: str = "tiny"  # model size preset
    extra: dict = field(default_factory=dict)
    n_parameters_training: int | None = None  # the whole training model (None: not known / same as scored)


@runtime_checkable
class Encoder(Protocol):
    input_spec: InputSpec
    card: EncoderCard

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 12, T) float32 prepared per ``input_spec`` -> (B, d) features; eval mode, no gradients."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """list of N strings -> (N, d) features in the same space as ``encode_ecg`` (normalised by the harness)."""
        ...


def supports_zero_shot(encoder: object) -> bool:
    """ECG-only methods (HeartLang, random init) have no text tower: their zero-shot cells are 'not applicable'."""
    return callable(getattr(encoder, "encode_text", None))


# --- optional capabilities of the modes beyond zero-shot and probes (never required, never faked) ------------------


@runtime_checkable
class ReportGenerator(Protocol):
    def generate_report(self, x: torch.Tensor) -> list[str]:
        """(B, 12, T) prepared per ``input_spec`` -> B report strings (methods with a decoder: MELP, ESI)."""
        ...


@runtime_checkable
class Finetunable(Protocol):
    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """The ``encode_ecg`` features *with* gradients, on an ``nn.Module`` whose parameters are the encoder
        (``ecg_text_align.PretrainModule`` has it); ``finetune`` trains a copy of the module plus a linear head."""
        ...


def supports_report_generation(encoder: object) -> bool:
    """Report generation applies to methods with a decoder; others get a 'not applicable' file."""
    return callable(getattr(encoder, "generate_report", None))


def finetune_module(encoder: object) -> torch.nn.Module | None:
    """The ``nn.Module`` that ``embed_ecg`` belongs to (the encoder itself, or the module behind a wrapper such as
    the runner's ``ScoredEncoder``), or None when the encoder cannot be fine-tuned."""
    fn = getattr(encoder, "embed_ecg", None)
    if not callable(fn):
        return None
    if isinstance(encoder, torch.nn.Module):
        return encoder
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, torch.nn.Module) else None


def supports_finetune(encoder: object) -> bool:
    """Fine-tuning needs a trainable forward (``embed_ecg``) on an ``nn.Module``."""
    return finetune_module(encoder) is not None
