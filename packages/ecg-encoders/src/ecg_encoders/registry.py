"""Encoders by name, imported lazily: choosing ``wav2vec2`` does not import ConvNeXt or HeartLang."""

from __future__ import annotations

from typing import Any

from ecg_data.registry import LazyRegistry

#: name -> factory ``(preset: str = "tiny", **overrides) -> ECGEncoder``
ECG_ENCODERS = LazyRegistry(
    "ECG encoder",
    {
        "wav2vec2": "ecg_encoders.ecg.wav2vec2.build_wav2vec2",
        "resnet18_1d": "ecg_encoders.ecg.resnet1d.build_resnet18_1d",
        "vit1d": "ecg_encoders.ecg.vit1d.build_vit1d",
        "convnextv2_1d": "ecg_encoders.ecg.convnextv2_1d.build_convnextv2_1d",
        "heartlang": "ecg_encoders.ecg.heartlang.build_heartlang",
    },
)

#: name -> factory ``(**kw) -> HFTextEncoder``
TEXT_ENCODERS = LazyRegistry(
    "text encoder",
    {
        "hf": "ecg_encoders.text.hf.HFTextEncoder",
        "preset": "ecg_encoders.text.presets.build_text_preset",
    },
)


def build_ecg_encoder(name: str, preset: str = "tiny", **overrides: Any) -> Any:
    return ECG_ENCODERS.build(name, preset=preset, **overrides)


def build_text_encoder(name_or_preset: str, **kw: Any) -> Any:
    """A text encoder by preset name (``offline_default``, ``medcpt``, ...) or hub name / local directory."""
    from ecg_encoders.text.presets import build_text_encoder as _build

    return _build(name_or_preset, **kw)
