"""Build sub-modules from plain-data specs, so a checkpoint's hyperparameters rebuild the model.

A spec is a dict: ``{"target": "pkg.module:attr", **kwargs}`` (any importable factory, e.g. a user's
encoder or a test stand-in) or ``{"name": "wav2vec2", "preset": "tiny", **overrides}`` for the ecg-encoders
ECG registry, e.g. ``{"target": "ecg_encoders.text.presets:build_text_preset", "name": "offline_default", "path": DIR}``
for a text preset (``target`` wins over ``name``).
"""

from __future__ import annotations

import importlib
from typing import Any


def import_attr(path: str) -> Any:
    if ":" not in path:
        raise ValueError(f"expected 'module:attr', got {path!r}")
    mod, attr = path.split(":", 1)
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def build(spec: dict[str, Any]) -> Any:
    spec = dict(spec)
    if "target" in spec:
        return import_attr(spec.pop("target"))(**spec)
    if "name" in spec:
        from ecg_encoders.registry import build_ecg_encoder

        name = spec.pop("name")
        return build_ecg_encoder(name, **spec)
    raise ValueError(f"component spec needs 'target' or 'name': {spec!r}")
