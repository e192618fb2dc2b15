"""Converters for the authors' released weights (MELP_Encoder, ECG-FM, MERL ResNet18 / ViT-tiny, HeartLang + VQ-HBR,
D-BETA).

``convert_released(path_or_state)`` detects the format from the tensor names, converts through the format's
explicit key map (every released tensor consumed or ignored with a reason, shapes checked) and returns a
``Released``: our module with the weights, the input conventions the released model was trained with (lead
order, scaling, preprocessing preset) and how to read its features. ``manifests/<format>.json`` hold the
released layouts (names and shapes) with provenance; tests build random state dicts from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_data.preprocess import HEARTLANG_DOWNSTREAM
from ecg_encoders.released.base import (
    MIMIC_LEADS,
    STANDARD_LEADS,
    Conversion,
    InputAdapter,
    load_state,
    manifest,
    random_state,
    weights_file,
)
from ecg_encoders.released.errors import ReleasedFormatError, WeightsNotAvailableError

FORMATS = ("melp_encoder", "ecgfm", "merl_resnet18", "merl_vit_tiny", "heartlang", "heartlang_vqhbr", "dbeta")


@dataclass
class Released:
    """A released model in our modules, with the conventions it was trained under."""

    fmt: str
    method: str  # the method whose weights these are ("melp", "merl", ...)
    model: nn.Module
    conversion: Conversion
    features: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    preset: str  # ecg_data preprocessing preset the harness prepares inputs with
    fs: int
    length: int
    lead_order: tuple[str, ...] = STANDARD_LEADS
    scaling: str = "none"  # extra scaling applied after the preset ("zscore_lead")
    pretrained_on: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    #: downstream presets per task/dataset where the original prepares datasets differently (HeartLang)
    task_presets: tuple[tuple[str, str], ...] = ()
    #: the text tower, where the file holds one: (model, input_ids, attention_mask) -> text features in the space of
    #: ``features`` (D-BETA); None for an ECG-only file
    text: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    #: the tokenizer the text tower was trained with, by its hub name (not in the file; loaded locally by the caller)
    text_tokenizer: str | None = None

    def adapter(self) -> InputAdapter:
        return InputAdapter(self.lead_order, self.scaling)


def detect_format(state: Mapping[str, Any], source: str = "state dict") -> str:
    from ecg_encoders.released import dbeta, fairseq_w2v, merl

    if dbeta.is_dbeta(state):  # before the wav2vec2 test: D-BETA's ECG tower is one, under ecg_encoder.
        return "dbeta"
    if "quantize.embedding.weight" in state:
        return "heartlang_vqhbr"
    if "token_embed.tokenConv.weight" in state and "lm_head.weight" in state:
        return "heartlang"
    p = fairseq_w2v.find_prefix(state)
    if p is not None:
        outer = p[: -len("ecg_encoder.")] if p.endswith("ecg_encoder.") else None
        return "melp_encoder" if outer is not None and f"{outer}attn_pool_contrast.query" in state else "ecgfm"
    if merl.find_prefix(state) is not None:
        return "merl_resnet18"
    if merl.find_vit_prefix(state) is not None:
        return "merl_vit_tiny"
    some = sorted(state)[:3]
    raise ReleasedFormatError(source, "released", f"matches none of the known formats {FORMATS} (first keys: {some})")


def _melp_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x, project=False).pooled  # MELP ext_ecg_emb: mean of the beat queries before proj_contrast


def _pooled(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x).pooled


def _resnet_mean(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.backbone(x).mean(-1)  # MERL linear probing on the encoder file: avgpool of the ResNet map


def _dbeta_text(m: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return m.text(input_ids, attention_mask)  # example.ipynb: unimodal_language_pooler(multi_modal_language_proj(T5))


def convert_released(
    src: str | Path | Mapping[str, torch.Tensor], fmt: str | None = None, source: str | None = None
) -> Released:
    """Convert a released file, directory or state dict; ``fmt`` forces a format instead of detecting it."""
    from ecg_encoders.released import dbeta, fairseq_w2v, heartlang, merl

    if isinstance(src, Mapping):
        state, source = dict(src), source or "state dict"
    else:
        f = weights_file(src)
        state, source = load_state(f), source or str(f)
    fmt = fmt or detect_format(state, source)
    if fmt not in FORMATS:
        raise ValueError(f"unknown released format {fmt!r}; known: {FORMATS}")
    info = manifest(fmt)
    prov = {k: info[k] for k in ("source", "paper", "notes") if k in info}
    pre = tuple(info.get("pretrained_on", ()))
    if fmt == "melp_encoder":
        model, conv = fairseq_w2v.convert_melp(state, source)
        return Released(fmt, "melp", model, conv, _melp_features, "melp", 500, 5000, MIMIC_LEADS, "none", pre, prov)
    if fmt == "ecgfm":
        model, conv = fairseq_w2v.convert_encoder(state, source)
        return Released(
            fmt, "ecg-fm", model, conv, _pooled, "raw500", 500, 5000, STANDARD_LEADS, "zscore_lead", pre, prov
        )
    if fmt == "merl_resnet18":
        model, conv, has_pool = merl.convert(state, source)
        return Released(
            fmt,
            "merl",
            model,
            conv,
            _pooled if has_pool else _resnet_mean,
            "merl",
            500,
            5000,
            MIMIC_LEADS,
            "none",
            pre,
            prov,
        )
    if fmt == "merl_vit_tiny":
        # whole model: proj_e(LN(mean of tokens)) = ext_ecg_emb; encoder file: LN(mean of tokens), the feature
        # MERL's linear probing reads (finetune/main_single.py loads it into vit_tiny, forward_encoding)
        model, conv, _ = merl.convert_vit(state, source)
        return Released(fmt, "merl", model, conv, _pooled, "merl", 500, 5000, MIMIC_LEADS, "none", pre, prov)
    if fmt == "dbeta":
        # the authors' get_ecg_feats: tanh pooler of the projected [CLS] (768-d); input as their example.ipynb feeds
        # it: 500 Hz, 10 s, standard lead order, no scaling (the pretraining preprocessing is not in the repository)
        model, conv = dbeta.convert(state, source)
        return Released(
            fmt,
            "d-beta",
            model,
            conv,
            _pooled,
            "raw500",
            500,
            5000,
            STANDARD_LEADS,
            "none",
            pre,
            prov,
            text=_dbeta_text,
            text_tokenizer=dbeta.TOKENIZER,
        )
    if fmt == "heartlang":
        model, conv = heartlang.convert_sentence(state, source)
        return Released(
            fmt,
            "heartlang",
            model,
            conv,
            _pooled,
            "heartlang",
            100,
            1000,
            MIMIC_LEADS,
            "none",
            pre,
            prov,
            tuple(HEARTLANG_DOWNSTREAM.items()),
        )
    model, conv = heartlang.convert_vqhbr(state, source)

    def _vq_unusable(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise ReleasedFormatError(
            source,
            fmt,
            "VQ-HBR is HeartLang's beat tokenizer, not a scored encoder: score the sentence model (checkpoint-200.pth)",
        )

    return Released(
        fmt,
        "heartlang_vqhbr",
        model,
        conv,
        _vq_unusable,
        "heartlang",
        100,
        1000,
        MIMIC_LEADS,
        "none",
        pre,
        prov,
        tuple(HEARTLANG_DOWNSTREAM.items()),
    )


__all__ = [
    "FORMATS",
    "Released",
    "ReleasedFormatError",
    "WeightsNotAvailableError",
    "convert_released",
    "detect_format",
    "load_state",
    "manifest",
    "random_state",
]
