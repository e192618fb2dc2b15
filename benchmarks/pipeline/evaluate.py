"""The evaluation stages: plan the (task, mode, fraction, seed) cells, skip those already scored, run the rest.

Why cells: a result file is the output of one cell; a cell whose file exists for the same checkpoint
hash is skipped, so an interrupted multirun resumes cell by cell and a new checkpoint re-scores.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from omegaconf import DictConfig

from benchmarks.pipeline.errors import ConfigError
from benchmarks.pipeline.store import RunStore
from ecg_data.paths import exclusive_lock, stable_hash

log = logging.getLogger("ecgbench")


def stage_modes() -> tuple[str, ...]:
    """Every mode the runner can stage, in the order it runs them: the registered modes with ``stage=True``
    (``ecg_eval.modes``; the default run: configs/config.yaml ``stages``). Read at call time, so a mode registered
    by a module that ``eval.mode_modules`` imports is a stage too."""
    from ecg_eval.modes import all_modes

    return tuple(m.name for m in all_modes() if m.stage)


@dataclass(frozen=True)
class Cell:
    task: str
    mode: str  # a registered mode (ecg_eval.modes)
    fraction: float | None  # None for zero-shot
    seed: int
    options: tuple[tuple[str, Any], ...] = ()  # the cell's own mode options (transfer: source, train_mode)


class Backend(Protocol):
    """What the runner needs from the evaluation library (benchmarks/pipeline/eval_backend.py wraps ecg_eval)."""

    leaderboard_path: Path  # the file publish() writes

    def check_task(self, task: str) -> None:
        """Raise DatasetNotFoundError / UnknownNameError before any work when a task cannot be loaded."""

    def check_pretrain_data(self, pretrain_data: DictConfig) -> None:
        """Raise DatasetNotFoundError when a real pretraining corpus is not on disk."""

    def result_path(self, *, suite: str, method: str, cell: Cell) -> Path: ...

    def is_done(self, path: Path, checkpoint_hash: str) -> bool:
        """A valid result file for this checkpoint exists (ecg_eval.results.is_complete)."""

    def evaluate(self, encoder: Any, *, suite: str, method: str, cell: Cell, out_path: Path) -> Path:
        """Score one cell, write its result file atomically at ``out_path``; return the path."""

    def publish(self) -> Path: ...


def _section(eval_cfg: DictConfig, mode: str) -> Any:
    opts = eval_cfg.get(mode) if hasattr(eval_cfg, "get") else None
    return opts if hasattr(opts, "get") else {}


def transfer_pairs(eval_cfg: DictConfig, mode: str = "transfer") -> list[tuple[str, str]]:
    """``eval.<mode>.pairs`` as (source, target) task names (each written ``source:target``)."""
    out = []
    for pair in _section(eval_cfg, mode).get("pairs") or []:
        src, sep, tgt = str(pair).partition(":")
        if not sep or not src or not tgt:
            raise ConfigError(f"eval.{mode}.pairs: {pair!r} is not source:target")
        out.append((src, tgt))
    return out


def mode_tasks(eval_cfg: DictConfig, tasks: list[str], mode: str, pretrain_task: str | None = None) -> list[str]:
    """The tasks a mode reads: the dataset's, ``eval.<mode>.tasks`` when set, the pretraining corpus' task for a
    ``per_corpus`` mode (its held-out split has reports), both sides of every pair for a ``per_pair`` mode."""
    from ecg_eval.modes import get_mode

    plan_kind = get_mode(mode).plan
    if plan_kind == "per_pair":
        return list(dict.fromkeys(t for pair in transfer_pairs(eval_cfg, mode) for t in pair))
    chosen = _section(eval_cfg, mode).get("tasks")
    if chosen:
        return [str(t) for t in chosen]
    if plan_kind == "per_corpus":
        return [pretrain_task] if pretrain_task else []
    return list(tasks)


def _fraction_cells(eval_cfg: DictConfig, task: str, mode: str, options: tuple = ()) -> list[Cell]:
    fractions = _section(eval_cfg, mode).get("fractions") or eval_cfg.fractions
    cells: list[Cell] = []
    for frac in fractions:
        seeds = eval_cfg.probe_seeds_full if float(frac) >= 1.0 else eval_cfg.probe_seeds
        cells += [Cell(task, mode, float(frac), int(s), options) for s in seeds]
    return cells


def plan(eval_cfg: DictConfig, tasks: list[str], mode: str, pretrain_task: str | None = None) -> list[Cell]:
    """Every cell of one mode, in a stable order (tasks, then fractions, then seeds), as the mode's ``plan`` says
    (``ecg_eval.modes.PLANS``)."""
    from ecg_eval.modes import get_mode

    plan_kind = get_mode(mode).plan
    cells: list[Cell] = []
    if plan_kind == "per_pair":  # source:target pairs x train modes; zero-shot has no fraction
        train_modes = _section(eval_cfg, mode).get("train_modes") or ["zero_shot", "linear_probe"]
        for src, tgt in transfer_pairs(eval_cfg, mode):
            for tm in train_modes:
                options = (("source", src), ("train_mode", str(tm)))
                if str(tm) == "zero_shot":
                    cells += [Cell(tgt, mode, None, int(s), options) for s in eval_cfg.zero_shot_seeds]
                else:
                    cells += _fraction_cells(eval_cfg, tgt, mode, options)
        return cells
    for task in mode_tasks(eval_cfg, tasks, mode, pretrain_task):
        if plan_kind == "per_task":
            cells += [Cell(task, mode, None, int(s)) for s in eval_cfg.zero_shot_seeds]
        elif plan_kind == "per_corpus":
            cells.append(Cell(task, mode, None, 0))
        else:
            cells += _fraction_cells(eval_cfg, task, mode)
    return cells


def run_mode(
    mode: str,
    cells: list[Cell],
    *,
    backend: Backend,
    encoder: Callable[[], Any],
    suite: str,
    method: str,
    checkpoint_hash: str,
    store: RunStore,
    run: str,
) -> int:
    """Score the cells of one mode whose result file is missing or belongs to another checkpoint; return how many ran.

    ``checkpoint_hash`` is the hash known before loading (the card's, remembered from an earlier load, or the
    file hash); if the loaded encoder's card says otherwise, the skip check is redone with the card's hash.
    """

    def pending(ckpt: str) -> list[tuple[Cell, Path]]:
        paths = [(c, backend.result_path(suite=suite, method=method, cell=c)) for c in cells]
        return [(c, p) for c, p in paths if not backend.is_done(p, ckpt)]

    todo = pending(checkpoint_hash)
    if todo:
        enc = encoder()
        if enc.card.checkpoint_hash != checkpoint_hash:
            checkpoint_hash = enc.card.checkpoint_hash
            todo = pending(checkpoint_hash)
    skipped = len(cells) - len(todo)
    if not todo:
        log.info("%s: skipped (all %d result files exist for checkpoint %s)", mode, skipped, checkpoint_hash)
        store.log_event(run, mode, "skipped", reason="output exists", cells=skipped)
        return 0
    t0 = time.perf_counter()
    ran = 0
    for cell, path in todo:
        # a parallel job scoring the same cell: one computes it, the other waits and then finds it done
        with exclusive_lock(
            store.root / ".locks" / f"{stable_hash(str(Path(path).resolve()))}.lock",
            waiting=f"{mode} {cell.task}: another process scores this cell; waiting",
        ):
            if backend.is_done(path, checkpoint_hash):
                skipped += 1
                continue
            written = backend.evaluate(enc, suite=suite, method=method, cell=cell, out_path=path)
        if Path(written) != path:
            raise RuntimeError(f"{mode} {cell}: the backend wrote {written}, expected {path}")
        ran += 1
    secs = time.perf_counter() - t0
    if not ran:
        log.info("%s: skipped (all %d result files written meanwhile by another process)", mode, skipped)
        store.log_event(run, mode, "skipped", reason="output exists", cells=skipped)
        return 0
    log.info("%s: ran %d cells (%.1f s), skipped %d whose result files exist", mode, ran, secs, skipped)
    store.log_event(run, mode, "ran", cells=ran, skipped_cells=skipped, seconds=round(secs, 3))
    return ran


class ScoredEncoder:
    """The loaded encoder as the harness should see it: the results name on its card, the pretraining corpus
    filled in when the card lacks it, and no ``encode_text`` when the method config says ``zero_shot: false``
    (its zero-shot cells are then written as "not applicable", never faked)."""

    def __init__(self, inner: Any, *, name: str, pretrained_on: list[str], zero_shot: bool) -> None:
        self.inner = inner
        self.input_spec = inner.input_spec
        card = inner.card
        on = tuple(getattr(card, "pretrained_on", ()) or ()) or tuple(pretrained_on)
        if dataclasses.is_dataclass(card):
            self.card = dataclasses.replace(card, name=name, pretrained_on=on)
        else:  # duck-typed card: keep its fields, override the two we own
            self.card = SimpleNamespace(**{**vars(card), "name": name, "pretrained_on": on})
        self.encode_ecg = inner.encode_ecg
        self._text = zero_shot and callable(getattr(inner, "encode_text", None))

    def __getattr__(self, attr: str) -> Any:
        """Everything else (``eval``, ``parameters``, ``generate_report`` ...) is the inner encoder's."""
        if attr == "encode_text" and not self.__dict__.get("_text", False):
            raise AttributeError("encode_text hidden: the method config says zero_shot: false")
        if attr.startswith("__") or attr == "inner":
            raise AttributeError(attr)
        return getattr(self.__dict__["inner"], attr)
