"""``PretrainDataModule``: ECG-report pairs from an ecg-data cached split + zero-shot validation tasks.

Training: the ``train`` split of the pretraining task (e.g. ``synth_mimic``, ``mimic_iv_ecg``), records
without a report counted and left out (logged), served by ``ecg_data.loader.make_loader``: index batches
per rank, one memmap gather per batch in the stored dtype (float16 for large caches), exact mid-epoch
resume. The cache is built with ``normalize="device"`` where the preset allows it (melp, merl, esi share
the ``raw500`` cache); what a module needs to know about its data (the preset's deferred normalisation, the
validation-loss loader's position, the cached splits, the demographics) is handed over as ``DataFacts`` by
``ecg_text_align.train.fit``, and the module transforms each batch in one hook (``PretrainModule.transform_batch``:
float32, the method's raw-signal augmentation, that normalisation, step-seeded lead masks) on the training device,
so nothing random happens in loader workers and neither side calls the other. Validation: the ``val`` split of each zero-shot
task, with labels in the prompts' class order, unsharded (every rank scores the whole split); with
``val_loss=True`` also the ``val`` split of the pretraining task itself, sharded by rank like the training
loader, for a validation *loss* (MELP's stage 0 selects its checkpoint on it). No test split is ever opened
here (model selection must not see it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from ecg_data.cache import CachedSplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFacts:
    """What a training module may know about its data, handed over once per fit (``ecg_text_align.train.fit``,
    after the datamodule's ``setup``): plain facts and the one callable below, never the datamodule itself.

    ``normalizer``: the preset's deferred per-record normalisation (``CachedSplit.normalizer``; None = stored
    normalised); ``loss_val_index``: the position of the validation-loss loader among the validation loaders (None =
    no validation loss); ``train_split`` / ``loss_val_split``: the cached splits whose rows the batches' ``index``
    names (MELP stage 0's subject ids); ``demographics``: () -> [(age, sex)] per training cache row (ESI's captions)."""

    normalizer: Any = None
    loss_val_index: int | None = None
    train_split: CachedSplit | None = None
    loss_val_split: CachedSplit | None = None
    demographics: Callable[[], list[tuple[int | None, str | None]]] | None = None


def labels_by_name(task: Any, record_ids: Sequence[str], classes: Sequence[str] | None) -> np.ndarray:
    """(N, C) labels with columns in the order of ``classes`` (the prompts' order), selected by name.

    Zero-shot scores come out in the order of the prompt dict; the task's canonical order may differ
    (e.g. ptbxl_super is CD, HYP, MI, NORM, STTC), so columns are never matched by position.
    """
    if classes is None:
        return task.y(record_ids)
    missing = [c for c in classes if c not in task.labels.columns]
    if missing:
        raise KeyError(
            f"task {task.name}: zero-shot classes {missing} are not among its classes {list(task.labels.columns)}"
        )
    return task.labels.loc[list(record_ids), list(classes)].to_numpy(dtype=np.float32)


def _rows_with_report(split: CachedSplit, what: str) -> tuple[list[int], int]:
    """Cache rows of the records with a non-empty report, and how many were left out (logged, never silent)."""
    reports = split.index["report"].tolist()
    keep = [i for i, r in enumerate(reports) if r is not None and str(r).strip()]
    skipped = len(reports) - len(keep)
    if skipped:
        log.warning("%s: %d of %d records have no report and are left out", what, skipped, len(reports))
    return keep, skipped


class PretrainDataModule(L.LightningDataModule):
    def __init__(
        self,
        pretrain_task: str = "synth_mimic",
        preset: str = "melp",
        batch_size: int = 64,  # MELP run command (scripts/pretrain/main_pretrain.py), per device
        num_workers: int = 0,
        seed: int = 0,
        zero_shot_tasks: Sequence[str] | Mapping[str, Sequence[str]] = (),
        root: str | None = None,
        task_roots: dict[str, str] | None = None,
        max_train_records: int | None = None,
        max_val_records: int | None = None,
        val_batch_size: int | None = None,
        val_loss: bool = False,
    ):
        super().__init__()
        self.pretrain_task, self.preset, self.batch_size = pretrain_task, preset, batch_size
        self.num_workers, self.seed, self.root = num_workers, seed, root
        #: task -> class names in the order the method scores them (its prompt dict); None = task order
        self.zero_shot_classes: dict[str, list[str] | None] = (
            {t: list(c) for t, c in zero_shot_tasks.items()}
            if isinstance(zero_shot_tasks, Mapping)
            else {t: None for t in zero_shot_tasks}
        )
        self.zero_shot_tasks = list(self.zero_shot_classes)
        self.task_roots = dict(task_roots or {})
        self.max_train_records, self.max_val_records = max_train_records, max_val_records
        self.val_batch_size = val_batch_size or batch_size
        self.train_split: CachedSplit | None = None
        self.train_rows: list[int] = []  # cache rows of the records with a report
        self.val_splits: list[tuple[CachedSplit, np.ndarray, list[int]]] = []  # (split, labels, rows)
        self.skipped_no_report = 0
        #: the pretraining task's val split for a validation loss (``val_loss=True``), and its loader's position
        #: among the validation loaders (after the zero-shot tasks'); None = no validation loss
        self.val_loss = bool(val_loss)
        self.loss_val_split: CachedSplit | None = None
        self.loss_val_rows: list[int] = []
        self.loss_val_index: int | None = None
        self._task: Any = None
        self._demographics: list[tuple[int | None, str | None]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_split is not None:
            return
        from ecg_data.cache import cached_split
        from ecg_data.tasks import get_task

        task = get_task(self.pretrain_task, root=self.root, seed=self.seed)
        split = cached_split(task, "train", self.preset, normalize="device")
        keep, self.skipped_no_report = _rows_with_report(split, f"{task.name} train")
        if self.max_train_records is not None:
            keep = keep[: self.max_train_records]
        if not keep:
            raise ValueError(f"{task.name} train split has no record with a report")
        self.train_split, self.train_rows = split, keep
        self._task = task
        for name in self.zero_shot_tasks:
            t = get_task(name, root=self.task_roots.get(name), seed=self.seed)
            vsplit = cached_split(t, "val", self.preset, normalize="device")
            labels = labels_by_name(t, vsplit.record_ids, self.zero_shot_classes[name])
            n = len(vsplit) if self.max_val_records is None else min(self.max_val_records, len(vsplit))
            self.val_splits.append((vsplit, labels, list(range(n))))
        if self.val_loss:
            lsplit = cached_split(task, "val", self.preset, normalize="device")
            rows, _ = _rows_with_report(lsplit, f"{task.name} val")
            if self.max_val_records is not None:
                rows = rows[: self.max_val_records]
            if not rows:
                raise ValueError(f"{task.name} val split has no record with a report: no validation loss possible")
            self.loss_val_split, self.loss_val_rows = lsplit, rows
            self.loss_val_index = len(self.val_splits)

    @property
    def has_validation(self) -> bool:
        """Whether any validation loader exists (zero-shot tasks or a validation loss); ``fit`` turns validation
        off otherwise."""
        return bool(self.zero_shot_tasks) or self.val_loss

    def demographics(self) -> list[tuple[int | None, str | None]]:
        """(age, sex) per cache row of the training split, from the pretraining reader's metadata (MIMIC-IV-ECG
        with the hosp ``patients`` table: ``age``, ``sex`` columns); (None, None) where unknown or absent.
        Read on first call only (ESI's captions ask for it; other methods never pay for it)."""
        if self.train_split is None:
            raise ValueError("call setup() first")
        if self._demographics is None:
            md = self._task.reader().metadata()
            if "age" not in md.columns:
                self._demographics = [(None, None)] * len(self.train_split)
            else:
                sub = md.reindex(list(self.train_split.record_ids))
                self._demographics = [(None if a is None or a != a else int(a), None if x is None or x != x else str(x))
                                      for a, x in zip(sub["age"], sub["sex"])]  # fmt: skip
        return self._demographics

    def train_dataloader(self) -> DataLoader:
        from ecg_data.loader import make_loader

        assert self.train_split is not None, "call setup() first"
        return make_loader(self.train_split, self.batch_size, rows=self.train_rows, seed=self.seed,
                           num_workers=self.num_workers)  # fmt: skip

    def val_dataloader(self) -> Any:
        from ecg_data.loader import make_loader

        loaders = [make_loader(split, self.val_batch_size, labels=labels, rows=rows, rank=0, world_size=1, shuffle=False,
                               drop_last=False, num_workers=self.num_workers)
                   for split, labels, rows in self.val_splits]  # fmt: skip
        if self.loss_val_split is not None:
            # sharded by rank (padded by repeating, as DistributedSampler): every rank has the same batch count,
            # so the collectives of a loss (CMSC's gather) line up; the logged mean is reduced across ranks
            loaders.append(make_loader(self.loss_val_split, self.val_batch_size, rows=self.loss_val_rows, shuffle=False,
                                       drop_last=False, num_workers=self.num_workers))  # fmt: skip
        return loaders

    def facts(self) -> DataFacts:
        """What the module is told about this data (after ``setup``): see ``DataFacts``."""
        return DataFacts(
            normalizer=self.train_split.normalizer if self.train_split is not None else None,
            loss_val_index=self.loss_val_index,
            train_split=self.train_split,
            loss_val_split=self.loss_val_split,
            demographics=self.demographics,
        )
