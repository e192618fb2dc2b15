"""The encoder protocol: the only thing ecg-eval knows about a method.

Any object with ``encode_ecg`` (and optionally ``encode_text``), an ``input_spec`` and a ``card`` can be
scored; ecg-eval never imports a method. Optional capabilities open more modes: ``encode_text`` (zero-shot,
retrieval), ``generate_report`` (report generation), ``embed_ecg`` on an ``nn.Module`` (fine-tuning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Protocol, runtime_checkable

import torch


def task_preset_pairs(mapping: Mapping[str, str] | Any) -> tuple[tuple[str, str], ...]:
    """A task/dataset -> preset mapping as sorted ``(name, preset)`` pairs (frozen, hashable, order-free)."""
    items = mapping.items() if isinstance(mapping, Mapping) else (mapping or ())
    return tuple(sorted((str(k), str(v)) for k, v in items))


@dataclass(frozen=True)
class InputSpec:
    """How the harness must prepare inputs: a named ecg-data preprocessing preset plus its rate/length.

    ``task_presets`` (optional, task or dataset name -> preset name): methods whose original prepares each downstream
    dataset differently (HeartLang) declare it; ``preset_for`` resolves it. Given as a mapping, stored as sorted pairs.
    """

    preset: str  # a name in ecg_data.preprocess.PRESETS, e.g. "melp", "merl", "esi", "heartlang"
    fs: int
    length: int  # samples per lead
    task_presets: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_presets", task_preset_pairs(self.task_presets))


def declared_task_presets(encoder: Any) -> dict[str, str]:
    """The encoder's task/dataset -> preset mapping (empty when its ``input_spec`` declares none or lacks the field)."""
    return dict(task_preset_pairs(getattr(encoder.input_spec, "task_presets", None) or ()))


def preset_for(encoder: Any, task: Any) -> str:
    """The preset that prepares ``task``'s inputs for ``encoder``: ``input_spec.task_presets`` by task name, then by
    dataset name, else ``input_spec.preset``. The one place the harness picks a preset (every mode calls it).

    A mapped preset must give the spec's rate and length (the encoder takes one input shape): checked here."""
    spec = encoder.input_spec
    mapping = declared_task_presets(encoder)
    for name in (getattr(task, "name", None), getattr(task, "dataset", None)):
        if name is not None and name in mapping:
            chosen = mapping[name]
            break
    else:
        return spec.preset
    from ecg_data.preprocess import get_preset

    p = get_preset(chosen)
    if (float(p.fs), int(p.length)) != (float(spec.fs), int(spec.length)):
        raise ValueError(
            f"task preset {chosen!r} for {getattr(task, 'name', task)} gives {p.fs} Hz x {p.length}; "
            f"the encoder's input_spec says {spec.fs} Hz x {spec.length}"
        )
    return chosen


def input_spec_dict(spec: Any) -> dict | None:
    """``input_spec`` as a result file stores it: preset, fs, length, plus ``task_presets`` (as an object) only when
    declared, so the files of encoders without a mapping keep exactly the content they had."""
    if not is_dataclass(spec):
        return None
    d = asdict(spec)  # type: ignore[arg-type]
    pairs = task_preset_pairs(d.pop("task_presets", None) or ())
    if pairs:
        d["task_presets"] = dict(pairs)
    return d


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
    """Report generation applies to methods with a decoder (and to the oracle reference row, which re-writes each
    record's report from its true conditions: ``generate_records_reports``); others get a 'not applicable' file."""
    return callable(getattr(encoder, "generate_report", None)) or callable(
        getattr(encoder, "generate_records_reports", None)
    )


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
