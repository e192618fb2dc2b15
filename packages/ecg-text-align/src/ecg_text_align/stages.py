"""MELP's three stages as runner stages (``configs/method/melp*.yaml`` name them with ``_target_``).

Stage contract of ``benchmarks/run.py`` (configs/method/README.md):
``fn(*, run_dir, inputs, pretrain_data, trainer, seed, **stage_kwargs) -> Path``. Every stage here is
also a plain function with explicit arguments, usable without Hydra: its arguments are plain data (dicts, lists,
str, numbers); the runner converts its Hydra config once (``benchmarks.pipeline.store.plain``).
``data_kwargs`` and ``trainer_config`` are public: the baselines' stages (``baselines/common.py``) build their
datamodule and trainer config with them, as MELP's stages do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pretrain_root(pretrain_data: Mapping[str, Any]) -> str | None:
    """The corpus root: explicit ``root``; for a synthetic corpus with ``n`` set, that-size preset; else the task default."""
    pd = dict(pretrain_data or {})
    if pd.get("root"):
        return str(pd["root"])
    if pd.get("suite") == "synthetic" and pd.get("n"):
        from ecg_data.synthetic import ensure_preset

        return str(ensure_preset(pd["name"], n=int(pd["n"])))
    return None


def data_kwargs(pretrain_data: Mapping[str, Any], seed: int, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``PretrainDataModule`` keyword arguments: the corpus task and root, the seed, the stage's ``data`` options."""
    pd = dict(pretrain_data or {})
    if not pd.get("task"):
        raise ValueError(f"pretrain_data needs a 'task' (an ecg_data.tasks name), got {pd}")
    return {"pretrain_task": pd["task"], "root": pretrain_root(pd), "seed": seed, **dict(data or {})}


def trainer_config(
    trainer: Mapping[str, Any] | None, seed: int, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The trainer group plus per-stage ``trainer_overrides`` (e.g. stage 0 runs fewer steps)."""
    return {"seed": seed, **dict(trainer or {}), **dict(overrides or {})}


def text_lm_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    trainer_overrides: Mapping[str, Any] | None = None,
    **lm_kwargs: Any,
) -> Path:
    """Stage 1: MLM on the corpus's training reports -> a Hugging Face model directory. Trains through ``fit``
    (the trainer group: DDP, loggers, resume from ``run_dir/checkpoints/last.ckpt``); ``steps`` is its max_steps."""
    from ecg_text_align.lm import train_text_lm

    pd = dict(pretrain_data or {})
    out = Path(run_dir) / "text_model"
    if out.is_dir():
        return out
    return train_text_lm(
        out,
        task=pd["task"],
        root=pretrain_root(pd),
        seed=seed,
        run_dir=run_dir,
        trainer=trainer_config(trainer, seed, trainer_overrides),
        **lm_kwargs,
    )


def ecg_stage0(
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
    """Stage 0: wav2vec2 + CMSC + lead masking on the corpus's ECGs -> checkpoint."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.melp_stage0 import MELPStage0
    from ecg_text_align.module import VAL_LOSS
    from ecg_text_align.train import fit

    module = MELPStage0(seed=seed, **module_kw)
    # select_on: val_loss (melp_paper, as main_pretrain.py:57-65) needs the corpus's val split as a loss loader
    val_loss = (module.selection() or ("", ""))[0] == VAL_LOSS
    dm = PretrainDataModule(**{**data_kwargs(pretrain_data, seed, data), "zero_shot_tasks": [], "val_loss": val_loss})
    return fit(module, dm, trainer_config(trainer, seed, trainer_overrides), run_dir)


def resolve_zero_shot(
    zero_shot: Mapping[str, Any], data: Mapping[str, Any] | None = None, seed: int = 0
) -> dict[str, Any]:
    """{task: {class: prompts}}; a task whose value is a string takes the prompts of *every* class of the task
    from that prompt file (``"default"`` = ecg-eval's ``prompts/default.json``, the harness's file), so a
    recipe can validate on tasks whose class lists come from the data (MELP selects on all six tasks)."""
    out: dict[str, Any] = {}
    roots = dict((data or {}).get("task_roots") or {})
    for task, prompts in zero_shot.items():
        if isinstance(prompts, str):
            from ecg_data.tasks import get_task
            from ecg_eval.prompts import class_prompts  # the harness's prompt files (a workspace package)

            t = get_task(task, root=roots.get(task), seed=seed)
            out[task] = class_prompts(
                list(t.classes), dataset=t.dataset, path=None if prompts == "default" else prompts
            )
        else:
            out[task] = prompts
    return out


def melp_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    zero_shot: Mapping[str, Any] | None = None,
    text_from: str | None = None,
    ecg_from: str | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    **module_kw: Any,
) -> Path:
    """Stage 2: MELP. ``text_from`` / ``ecg_from`` name earlier stages whose outputs are the text model
    directory / the stage-0 checkpoint; ``zero_shot`` is {task: {class: [prompts]}} for validation."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.melp import MELP
    from ecg_text_align.train import fit

    kw = dict(module_kw)
    if text_from:
        kw["text_encoder"] = {**kw.get("text_encoder", {}), "path": str(inputs[text_from])}
    if ecg_from:
        kw["ecg_tower_ckpt"] = str(inputs[ecg_from])
    pd = dict(pretrain_data or {})
    if pd.get("name"):
        kw.setdefault("pretrained_on", [pd["name"]])
    zs = resolve_zero_shot(dict(zero_shot or {}), data, seed)
    module = MELP(seed=seed, zero_shot=zs, **kw)
    dm = PretrainDataModule(
        **{**data_kwargs(pretrain_data, seed, data), "zero_shot_tasks": {t: list(c) for t, c in zs.items()}}
    )
    return fit(module, dm, trainer_config(trainer, seed, trainer_overrides), run_dir)
