"""Config-driven methods: validate ``configs/method/<name>.yaml``, run its pretraining stages, load the encoder.

The stage contract (configs/method/README.md): each stage is a Hydra ``_target_`` callable
``fn(*, run_dir, inputs, pretrain_data, trainer, seed, **stage_kwargs) -> Path``; its output feeds
later stages as ``inputs[stage_name]``; ``load._target_`` turns the last output into an encoder.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.pipeline.errors import ConfigError, maybe_stop_after
from benchmarks.pipeline.export_hook import on_stage_complete
from benchmarks.pipeline.ranks import barrier, is_global_zero
from benchmarks.pipeline.store import RunStore, marker_output, path_hash, plain, read_marker, write_marker
from ecg_data.paths import atomic_write_text

log = logging.getLogger("ecgbench")
_RESERVED = {"name", "_target_"}


def validate_method(method: DictConfig) -> None:
    """Fail before any work when a method YAML misses a key, naming the file and the key."""
    name = method.get("name")
    where = f"configs/method/{name}.yaml" if name else "the method config"
    if not name:
        raise ConfigError(f"{where}: missing 'name'")
    if not isinstance(method.get("zero_shot"), bool):
        raise ConfigError(f"{where}: 'zero_shot' must be true or false")
    stages = method.get("stages")
    if stages is None or not OmegaConf.is_list(stages):
        raise ConfigError(f"{where}: 'stages' must be a list (empty for a method without pretraining)")
    seen: set[str] = set()
    for i, st in enumerate(stages):
        if not isinstance(st, DictConfig) or not st.get("name") or not st.get("_target_"):
            raise ConfigError(f"{where}: stage #{i} needs 'name' and '_target_'")
        if st.name in seen:
            raise ConfigError(f"{where}: stage name {st.name!r} is used twice")
        seen.add(st.name)
    load = method.get("load")
    if not isinstance(load, DictConfig) or not load.get("_target_"):
        raise ConfigError(f"{where}: 'load' needs a '_target_' (a callable path -> encoder)")


def _resolve(target: str, where: str) -> Any:
    from ecg_text_align.components import locate  # the one importer of _target_ paths

    try:
        fn = locate(target)
    except ImportError as e:  # keep the message, name the config
        raise ConfigError(f"{where}: cannot import _target_ {target!r}: {e}") from e
    if not callable(fn):
        raise ConfigError(f"{where}: _target_ {target!r} is not callable")
    return fn


def seed_everything(seed: int) -> None:
    """Same seed for every stage, so a rerun of one stage after a crash reproduces it."""
    import numpy as np  # here, not at module level: bad-input errors come back without loading torch
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Pretrained:
    """What the evaluation stages need: the checkpoint (or None for random init) and its hash."""

    path: Path | None
    checkpoint_hash: str
    run_dir: Path | None
    source: Any = None  # benchmarks.pipeline.checkpoints.CkptSource when ckpt= was given
    encoder: Any = None  # the encoder the export loaded, reused for scoring (the method's loader runs once)


def pretrain(cfg: DictConfig, store: RunStore) -> Pretrained:
    """Run (or skip) each pretraining stage; reuse the whole run when its completion marker exists."""
    method = cfg.method
    if cfg.get("ckpt"):
        from benchmarks.pipeline.checkpoints import classify_ckpt, row_name

        src = classify_ckpt(str(cfg.ckpt))
        path = src.path
        if not cfg.get("results_name") and row_name(src, str(method.name)):
            cfg.results_name = row_name(src, str(method.name))  # the row says where the weights came from
        log.info("pretrain: skipped (ckpt= given: %s, %s)", path, src.kind + (f" {src.fmt}" if src.fmt else ""))
        store.log_event(str(path), "pretrain", "skipped", reason="ckpt given")
        return Pretrained(path, path_hash(path), None, src)

    run_dir = store.run_dir(cfg)
    with store.address_lock(run_dir):  # a parallel job for the same address waits, then reuses the run
        return _pretrain_address(cfg, store, run_dir)


def _pretrain_address(cfg: DictConfig, store: RunStore, run_dir: Path) -> Pretrained:
    method = cfg.method
    where = f"configs/method/{method.name}.yaml"
    rel = str(run_dir.relative_to(store.root))
    done = read_marker(run_dir)
    if done is not None:
        out = marker_output(run_dir, done)
        log.info("pretrain: skipped (output exists: %s)", out if out is not None else run_dir)
        store.log_event(rel, "pretrain", "skipped", reason="output exists")
        return Pretrained(out, done["checkpoint_hash"], run_dir)

    run_dir.mkdir(parents=True, exist_ok=True)
    if is_global_zero():
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    inputs: dict[str, Path] = {}
    last: Path | None = None
    for st in method.stages:
        stage_dir = run_dir / st.name
        marker = read_marker(stage_dir)
        label = f"pretrain/{st.name}"
        if marker is not None:
            last = inputs[st.name] = marker_output(stage_dir, marker)
            log.info("%s: skipped (output exists: %s)", label, last)
            store.log_event(rel, label, "skipped", reason="output exists")
            continue
        fn = _resolve(st._target_, f"{where} stage {st.name!r}")
        kwargs = {k: v for k, v in plain(st).items() if k not in _RESERVED}
        stage_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(int(cfg.seed))
        t0 = time.perf_counter()
        out = fn(
            run_dir=stage_dir,
            inputs=dict(inputs),
            pretrain_data=plain(cfg.pretrain_data),
            trainer=plain(cfg.get("trainer")) or {},
            seed=int(cfg.seed),
            **kwargs,
        )
        barrier()  # rank 0 has written the stage's output (shared file system) before anyone checks it
        if out is None or not Path(out).exists():
            raise ConfigError(f"{where} stage {st.name!r}: {st._target_} returned {out!r}, not an existing path")
        if is_global_zero():
            on_stage_complete(method=str(method.name), stage=str(st.name), stage_dir=stage_dir, output=Path(out))
        write_marker(stage_dir, Path(out))
        last = inputs[st.name] = Path(out)
        secs = time.perf_counter() - t0
        log.info("%s: ran (%.1f s) -> %s", label, secs, last)
        store.log_event(rel, label, "ran", seconds=round(secs, 3), output=str(last))
        maybe_stop_after(label)

    # A method without stages (random init) is identified by its config hash, as EncoderCard documents.
    ckpt_hash = path_hash(last) if last is not None else run_dir.name.split("-seed")[0]
    # the portable model directory <run>/model (docs/checkpoints.md), written before the run counts as complete
    from benchmarks.pipeline.checkpoints import export_run

    loaded: dict[str, Any] = {}

    def _load() -> Any:
        loaded["encoder"] = load_encoder(cfg, Pretrained(last, ckpt_hash, run_dir))
        return loaded["encoder"]

    if is_global_zero():  # one writer of <run>/model, as of every marker (the other ranks exit after the barrier)
        export_run(cfg, _load, run_dir, ckpt_hash)
    write_marker(run_dir, last, checkpoint_hash=ckpt_hash)
    barrier()  # the run marker exists before non-zero ranks leave
    log.info("pretrain: done -> %s", last if last is not None else "(no stages: random init)")
    store.log_event(rel, "pretrain", "ran", checkpoint_hash=ckpt_hash)
    return Pretrained(last, ckpt_hash, run_dir, encoder=loaded.get("encoder"))


def load_encoder(cfg: DictConfig, pre: Pretrained) -> Any:
    """``method.load._target_(path, **kwargs)``; path is None for a method without stages."""
    if pre.encoder is not None:  # loaded once already, for the export at the end of pretraining
        return pre.encoder
    if pre.source is not None and pre.source.kind != "project":  # exported directory or released weights
        from benchmarks.pipeline.checkpoints import load_external

        seed_everything(int(cfg.seed))
        return load_external(pre.source, name=cfg.get("results_name"), text_tokenizer=cfg.get("text_tokenizer"))
    load = cfg.method.load
    fn = _resolve(load._target_, f"configs/method/{cfg.method.name}.yaml load")
    kwargs = {k: v for k, v in plain(load).items() if k != "_target_"}
    seed_everything(int(cfg.seed))
    encoder = fn(pre.path, **kwargs)
    if not callable(getattr(encoder, "encode_ecg", None)):
        raise ConfigError(
            f"configs/method/{cfg.method.name}.yaml load: {load._target_} returned "
            f"{type(encoder).__name__}, which has no encode_ecg (the ecg-eval encoder protocol)"
        )
    return encoder
