"""HeartLang's two runner stages, chained by config (configs/method/heartlang.yaml):
``vqhbr`` (VQ heartbeat reconstruction) -> ``msm`` (masked ECG-sentence modelling, targets from ``vqhbr``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baselines.common import fit_module, module_kwargs


def vqhbr_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    **module_kw: Any,
) -> Path:
    from baselines.heartlang.model import HeartLangVQ

    module = HeartLangVQ(seed=seed, **module_kwargs(module_kw, inputs, pretrain_data))
    return fit_module(
        module,
        run_dir=run_dir,
        pretrain_data=pretrain_data,
        trainer=trainer,
        seed=seed,
        data=data,
        zero_shot=None,
        trainer_overrides=trainer_overrides,
    )


def msm_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    vq_from: str = "vqhbr",
    **module_kw: Any,
) -> Path:
    from baselines.heartlang.model import HeartLangMSM

    if vq_from not in inputs:
        raise KeyError(f"vq_from={vq_from!r} names no earlier stage; have {sorted(inputs)}")
    module = HeartLangMSM(seed=seed, **module_kwargs(module_kw, inputs, pretrain_data))
    module.load_vq(inputs[vq_from])
    return fit_module(
        module,
        run_dir=run_dir,
        pretrain_data=pretrain_data,
        trainer=trainer,
        seed=seed,
        data=data,
        zero_shot=None,
        trainer_overrides=trainer_overrides,
    )
