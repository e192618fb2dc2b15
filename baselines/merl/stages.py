"""MERL's runner stage: ``fn(*, run_dir, inputs, pretrain_data, trainer, seed, **kw) -> Path`` (configs/method/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baselines.common import fit_module, module_kwargs


def merl_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    zero_shot: Mapping[str, Any] | None = None,
    text_from: str | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    **module_kw: Any,
) -> Path:
    """Pretrain MERL; ``text_from`` names the stage whose output is the text model directory (offline default)."""
    from baselines.merl.model import MERL

    zs = dict(zero_shot or {})
    module = MERL(seed=seed, zero_shot=zs, **module_kwargs(module_kw, inputs, pretrain_data, text_from))
    return fit_module(
        module,
        run_dir=run_dir,
        pretrain_data=pretrain_data,
        trainer=trainer,
        seed=seed,
        data=data,
        zero_shot=zs,
        trainer_overrides=trainer_overrides,
    )
