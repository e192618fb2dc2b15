"""``fit``: the one training entry point (Lightning Trainer + checkpointing + resume + early stopping).

Checkpoints under ``run_dir/checkpoints``: ``epoch=NNN.ckpt`` every epoch, ``last.ckpt`` every
``checkpoint_every_n_steps`` optimiser steps (default 1000) and at each epoch end (mid-run resume), ``best.ckpt`` by
``val/zs_auroc`` (validation split of the downstream tasks; a test split is never loaded here).
A rerun with the same ``run_dir`` resumes from ``last.ckpt``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

log = logging.getLogger(__name__)

MONITOR = "val/zs_auroc"

#: Trainer defaults; ``configs/trainer/*.yaml`` override them.
DEFAULTS: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "precision": "32-true",
    "max_epochs": 1,
    "max_steps": -1,
    "gradient_clip_val": 1.0,
    "log_every_n_steps": 10,
    "deterministic": False,
    "check_val_every_n_epoch": 1,
    "val_check_interval": None,
    "limit_val_batches": None,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
    "accumulate_grad_batches": 1,
    # ResumableLoader shards by rank itself (exact mid-epoch resume); plain loaders get Lightning's sampler
    "use_distributed_sampler": False,
}
OWN_KEYS = {"seed", "checkpoint_every_n_steps", "early_stopping_patience", "resume"}


def _trainer_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    kw = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in OWN_KEYS}}
    nullable = ("val_check_interval", "check_val_every_n_epoch", "limit_val_batches")
    return {k: v for k, v in kw.items() if v is not None or k in nullable}


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, trainer_cfg: Mapping[str, Any], run_dir: str | Path) -> Path:
    """Train ``module`` on ``datamodule``; return the best checkpoint by ``val/zs_auroc`` (or ``last``)."""
    tasks = getattr(datamodule, "zero_shot_tasks", None)
    prompts = getattr(module, "zero_shot", None)
    if tasks is not None and prompts is not None and list(tasks) != list(prompts):
        raise ValueError(
            f"zero-shot validation tasks of the data ({list(tasks)}) and the prompts of the method "
            f"({list(prompts)}) must be the same, in the same order"
        )
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    cfg = dict(trainer_cfg)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True)
    monitored = bool(getattr(module, "zero_shot", None)) and callable(getattr(module, "encode_text", None))

    last = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="step{step:07d}",
        save_top_k=0,
        save_last=True,
        every_n_train_steps=int(cfg.get("checkpoint_every_n_steps") or 1000),
        auto_insert_metric_name=False,
    )
    per_epoch = ModelCheckpoint(
        dirpath=ckpt_dir, filename="epoch={epoch:03d}", save_top_k=-1, every_n_epochs=1, auto_insert_metric_name=False,
        save_last=True,  # last.ckpt also at every epoch end
    )
    callbacks: list[Any] = [last, per_epoch]
    best = None
    if monitored:
        best = ModelCheckpoint(
            dirpath=ckpt_dir, filename="best", monitor=MONITOR, mode="max", save_top_k=1, auto_insert_metric_name=False,
            save_on_train_epoch_end=False,
        )
        callbacks.append(best)
        patience = cfg.get("early_stopping_patience")
        if patience:
            callbacks.append(EarlyStopping(monitor=MONITOR, mode="max", patience=int(patience)))
    else:
        log.info("no zero-shot validation tasks (or no text tower): keeping only per-epoch and last checkpoints")

    trainer = L.Trainer(
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=CSVLogger(run_dir, name="logs", version=0),
        **_trainer_kwargs(cfg),
    )
    resume = ckpt_dir / "last.ckpt"
    ckpt_path = str(resume) if resume.is_file() and cfg.get("resume", True) else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    # a stop by max_time / max_steps / early stopping between checkpoint steps must not lose the final state
    trainer.save_checkpoint(resume)
    if best is not None and best.best_model_path:
        return Path(best.best_model_path)
    return resume
