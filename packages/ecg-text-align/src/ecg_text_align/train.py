"""``fit``: the one training entry point (Lightning Trainer + checkpointing + resume + loggers + DDP checks).

Checkpoints under ``run_dir/checkpoints`` (the policy for long runs, docs/pretraining.md):
- ``last.ckpt``: one file, rewritten every ``checkpoint_every_n_steps`` optimiser steps and at the end (resume);
- ``best.ckpt`` (or the best ``checkpoint_best_k`` as ``best-stepNNNNNNN.ckpt``) by the module's ``selection()``:
  ``val/zs_auroc`` (max, on the validation split of the downstream tasks) or ``val/loss`` (min, on the
  pretraining corpus's val split: MELP stage 0); a test split is never loaded here;
- ``epoch=NNN.ckpt`` snapshots only when ``snapshot_every_n_epochs`` is set (off by default: at paper size a full
  training state is ~1 GB per file).
A rerun with the same ``run_dir`` resumes from ``last.ckpt``. Loggers come from ``trainer_cfg["logger"]``
(``configs/logger/``: name -> ``{_target_: ..., **kwargs}``), default CSV under ``run_dir/logs/version_0``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from ecg_data.integrity import SAFE_GLOBALS, is_trusted, safe_torch_load
from ecg_text_align.components import locate
from ecg_text_align.module import VAL_LOSS
from ecg_text_align.monitor import LearningMonitor

log = logging.getLogger(__name__)

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
    # ecg_data.loader's ShardedBatchSampler shards by rank itself (exact mid-epoch resume)
    "use_distributed_sampler": False,
}
OWN_KEYS = {
    "seed",
    "checkpoint_every_n_steps",
    "early_stopping_patience",
    "resume",
    "logger",
    "checkpoint_best_k",
    "snapshot_every_n_epochs",
    "perf",
}
#: the default logger: CSV at run_dir/logs/version_0/metrics.csv
DEFAULT_LOGGERS: dict[str, Any] = {
    "csv": {"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "logs", "version": 0},
}


class LoggerConfigError(ValueError):
    """A logger config that cannot be built (unknown target, package not installed); printed without traceback."""


def _trainer_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    kw = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in OWN_KEYS}}
    nullable = ("val_check_interval", "check_val_every_n_epoch", "limit_val_batches")
    return {k: v for k, v in kw.items() if v is not None or k in nullable}


def build_loggers(spec: Any, run_dir: Path) -> list[Any] | bool:
    """Loggers from ``{name: {_target_, **kwargs}}`` (several at once); ``False``/empty = no logger.

    ``save_dir`` defaults to the stage's ``run_dir`` and a wandb/mlflow run is named after it, so every stage
    of every run logs to its own place."""
    if spec is False:
        return False
    spec = DEFAULT_LOGGERS if spec is None or spec is True else spec
    if not isinstance(spec, Mapping):
        raise LoggerConfigError(
            f"trainer.logger must be a mapping name -> {{_target_: ...}} (configs/logger/), got {spec!r}"
        )
    out: list[Any] = []
    for name, one in spec.items():
        if one is None:
            continue
        if not isinstance(one, Mapping) or "_target_" not in one:
            raise LoggerConfigError(f"logger {name!r}: expected {{_target_: <class>, ...}}, got {one!r}")
        kw = {k: v for k, v in one.items() if k != "_target_"}
        try:
            cls = locate(str(one["_target_"]))
        except (ImportError, AttributeError) as e:
            raise LoggerConfigError(f"logger {name!r}: cannot import {one['_target_']}: {e}") from None
        params = inspect.signature(cls.__init__).parameters
        if "save_dir" in params and not kw.get("save_dir"):
            kw["save_dir"] = str(run_dir)
        for key in ("run_name",):
            if key in params and not kw.get(key):
                kw[key] = str(run_dir)
        try:
            out.append(cls(**kw))
        except (ImportError, ModuleNotFoundError) as e:
            raise LoggerConfigError(
                f"logger {name!r} ({one['_target_']}): {e} -- install its package "
                f"(e.g. pip install tensorboard / wandb / mlflow)"
            ) from None
    return out or False


class _AgreeAcrossRanks(Callback):
    """Fail fast when the ranks disagree on what they train (a run directory computed differently, a vocabulary
    built differently): DDP would otherwise silently average gradients of different things."""

    def __init__(self, values: Mapping[str, str]):
        self.values = dict(values)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size == 1:
            return
        ref = trainer.strategy.broadcast(self.values, src=0)
        bad = {k: (v, ref.get(k)) for k, v in self.values.items() if ref.get(k) != v}
        if bad:
            raise RuntimeError(
                f"rank {trainer.global_rank} disagrees with rank 0 on {bad}; every rank must see the "
                "same config (and the same run store path)"
            )


def _fingerprint(module: L.LightningModule) -> str:
    fn = getattr(module, "ddp_fingerprint", None)
    return str(fn()) if callable(fn) else ""


class HandOverData(Callback):
    """The one place where data and model meet: after the datamodule's ``setup`` (Lightning calls it before the
    callbacks' ``setup``), the module is given the datamodule's ``facts()`` (``ecg_text_align.data.DataFacts``:
    its deferred normalisation, validation-loss loader, cached splits, demographics). The module transforms its
    batches itself (``PretrainModule.transform_batch``); the datamodule never calls the module, nor the module the
    datamodule. Modules without ``use_data`` (the text LM) or data without ``facts`` are left as they are."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        facts = getattr(trainer.datamodule, "facts", None)
        use = getattr(pl_module, "use_data", None)
        if callable(facts) and callable(use):
            use(facts())


def fit(
    module: L.LightningModule, datamodule: L.LightningDataModule, trainer_cfg: Mapping[str, Any], run_dir: str | Path
) -> Path:
    """Train ``module`` on ``datamodule``; return the best checkpoint by ``module.selection()`` (or ``last``)."""
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
    if getattr(datamodule, "has_validation", True) is False:
        cfg["limit_val_batches"] = 0  # no validation loader at all (Lightning warns on an empty list of loaders)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
    selection = module.selection() if callable(getattr(module, "selection", None)) else None
    if selection is not None and selection[0] == VAL_LOSS and getattr(datamodule, "val_loss", False) is not True:
        raise ValueError(
            f"{type(module).__name__} selects on val/loss, but the data module computes no validation "
            "loss: build PretrainDataModule(val_loss=True)"
        )

    last = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="step{step:07d}",
        save_top_k=0,
        save_last=True,
        every_n_train_steps=int(cfg.get("checkpoint_every_n_steps") or 1000),
        auto_insert_metric_name=False,
    )
    agree = {
        "run_dir": str(run_dir.resolve()),
        "module": type(module).__qualname__,
        "fingerprint": _fingerprint(module),
    }
    # is it learning? contrastive losses against chance, warnings, learning_curve.png (ecg_text_align.monitor)
    callbacks: list[Any] = [last, _AgreeAcrossRanks(agree), LearningMonitor(run_dir)]
    snap = cfg.get("snapshot_every_n_epochs")
    if snap:
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="epoch={epoch:03d}",
                save_top_k=-1,
                every_n_epochs=int(snap),
                auto_insert_metric_name=False,
                save_last=False,
            )
        )
    best = None
    if selection is not None:
        monitor, mode = selection
        k = int(cfg.get("checkpoint_best_k") or 1)
        best = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best" if k == 1 else "best-step{step:07d}",
            monitor=monitor,
            mode=mode,
            save_top_k=k,
            auto_insert_metric_name=False,
            save_on_train_epoch_end=False,
            save_last=False,
        )
        callbacks.append(best)
        patience = cfg.get("early_stopping_patience")
        if patience:
            callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=int(patience)))
    else:
        log.info(
            "no selection metric (no zero-shot validation tasks or text tower, no validation loss): keeping only last.ckpt"
        )

    callbacks.append(HandOverData())
    trainer = L.Trainer(
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=build_loggers(cfg.get("logger"), run_dir),
        **_trainer_kwargs(cfg),
    )
    if cfg.get("perf"):
        from ecg_text_align.perf import apply_perf

        log.info("perf options: %s", apply_perf(module, cfg["perf"]))
    resume = ckpt_dir / "last.ckpt"
    ckpt_path = str(resume) if resume.is_file() and cfg.get("resume", True) else None
    trusted = False
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
        # refused here, in one line naming the file, if it holds more than tensors and plain data; Lightning then
        # reads it with weights_only=True too (a full unpickle only for a file named in ECGBENCH_ALLOW_PICKLE)
        safe_torch_load(resume, mmap=True)
        trusted = is_trusted(resume)
    with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not trusted)
    # a stop by max_time / max_steps / early stopping between checkpoint steps must not lose the final state
    # (Trainer.save_checkpoint writes on global rank 0 and ends with a barrier)
    trainer.save_checkpoint(resume, weights_only=last.save_weights_only)  # as the last-checkpoint callback: full state
    if best is not None and best.best_model_path:
        return Path(best.best_model_path)
    return resume


def vocab_fingerprint(tokenizer: Any) -> str:
    """A short hash of a tokenizer's vocabulary (ranks must agree on it)."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(repr(vocab).encode()).hexdigest()[:16]
