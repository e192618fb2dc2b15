"""Helpers the baselines' stage functions share (thin wrappers over ``ecg_text_align.stages``).

Why: every method must train through the same ``PretrainDataModule`` + ``fit`` as MELP so differences come
from the methods, not the code around them; these wrappers only add what a baseline needs on top
(a text tower taken from an earlier stage, the method's preprocessing preset, the corpus name on the card).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecg_text_align.stages import data_kwargs, trainer_config


def module_kwargs(
    module_kw: Mapping[str, Any],
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    text_from: str | None = None,
) -> dict[str, Any]:
    """Resolve stage kwargs into model kwargs: the text tower path from an earlier stage, the corpus name."""
    kw = dict(module_kw or {})
    if text_from:
        if text_from not in inputs:
            raise KeyError(f"text_from={text_from!r} names no earlier stage; have {sorted(inputs)}")
        kw["text_encoder"] = {**dict(kw.get("text_encoder") or {}), "path": str(inputs[text_from])}
    pd = dict(pretrain_data or {})
    if pd.get("name"):
        kw.setdefault("pretrained_on", [pd["name"]])
    return kw


def fit_module(
    module: Any,
    *,
    run_dir: Path,
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None,
    seed: int,
    data: Mapping[str, Any] | None,
    zero_shot: Mapping[str, Any] | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train ``module`` on the pretraining corpus with the shared datamodule and ``fit``; returns the checkpoint.

    ``zero_shot`` is the method's {task: {class: prompts}}: the datamodule selects the validation labels by
    those class names, in that order (never by position)."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.train import fit

    dkw = {
        "preset": module.input_spec.preset,
        **data_kwargs(pretrain_data, seed, data),
        "zero_shot_tasks": {t: list(c) for t, c in dict(zero_shot or {}).items()},
    }
    return fit(module, PretrainDataModule(**dkw), trainer_config(trainer, seed, trainer_overrides), run_dir)
