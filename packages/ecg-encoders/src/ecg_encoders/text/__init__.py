"""Text encoders: one wrapper over Hugging Face ``transformers`` plus presets and an offline default.

Names resolve lazily so ``import ecg_encoders.text`` does not import ``transformers``.
"""

from __future__ import annotations

from typing import Any

from ecg_encoders.text.errors import ModelNotAvailableError

__all__ = [
    "HFTextEncoder",
    "ModelNotAvailableError",
    "TextOutput",
    "build_text_encoder",
    "build_text_preset",
    "TEXT_PRESETS",
]

_LAZY = {
    "HFTextEncoder": "ecg_encoders.text.hf",
    "TextOutput": "ecg_encoders.text.hf",
    "build_text_preset": "ecg_encoders.text.presets",
    "build_text_encoder": "ecg_encoders.text.presets",
    "TEXT_PRESETS": "ecg_encoders.text.presets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ecg_encoders.text' has no attribute {name!r}")
