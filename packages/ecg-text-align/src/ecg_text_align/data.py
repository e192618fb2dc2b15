"""``PretrainDataModule``: ECG-report pairs from an ecg-data cached split + zero-shot validation tasks.

Training: the ``train`` split of the pretraining task (e.g. ``synth_mimic``, ``mimic_iv_ecg``), records
without a report counted and left out (logged), served by ``ResumableLoader`` (exact mid-epoch resume,
per-rank shards). Random lead masking is applied by the module on the batch (step-seeded), so nothing
random happens in loader workers. Validation: the ``val`` split of each zero-shot task, with labels in
the task's class order. No test split is ever opened here (model selection must not see it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from ecg_text_align.loader import ResumableLoader

log = logging.getLogger(__name__)


def labels_by_name(task: Any, record_ids: Sequence[str], classes: Sequence[str] | None) -> np.ndarray:
    """(N, C) labels with columns in the order of ``classes`` (the prompts' order), selected by name.

    Zero-shot scores come out in the order of the prompt dict; the task's canonical order may differ
    (e.g. ptbxl_super is CD, HYP, MI, NORM, STTC), so columns are never matched by position.
    """
    if classes is None:
        return task.y(record_ids)
    missing = [c for c in classes if c not in task.labels.columns]
    if missing:
        raise KeyError(f"task {task.name}: zero-shot classes {missing} are not among its classes {list(task.labels.columns)}")
    return task.labels.loc[list(record_ids), list(classes)].to_numpy(dtype=np.float32)


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
    ):
        super().__init__()
        self.pretrain_task, self.preset, self.batch_size = pretrain_task, preset, batch_size
        self.num_workers, self.seed, self.root = num_workers, seed, root
        #: task -> class names in the order the method scores them (its prompt dict); None = task order
        self.zero_shot_classes: dict[str, list[str] | None] = (
            {t: list(c) for t, c in zero_shot_tasks.items()} if isinstance(zero_shot_tasks, Mapping)
            else {t: None for t in zero_shot_tasks}
        )
        self.zero_shot_tasks = list(self.zero_shot_classes)
        self.task_roots = dict(task_roots or {})
        self.max_train_records, self.max_val_records = max_train_records, max_val_records
        self.val_batch_size = val_batch_size or batch_size
        self.train_set: Dataset | None = None
        self.val_sets: list[Dataset] = []
        self.skipped_no_report = 0

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from ecg_data.cache import cached_split
        from ecg_data.tasks import get_task
        from ecg_data.torch_datasets import CachedECGDataset

        task = get_task(self.pretrain_task, root=self.root, seed=self.seed)
        ds = CachedECGDataset(cached_split(task, "train", self.preset))
        keep = [i for i, r in enumerate(ds.reports) if r.strip()]
        self.skipped_no_report = len(ds) - len(keep)
        if self.skipped_no_report:
            log.warning("%s train: %d of %d records have no report and are left out", task.name, self.skipped_no_report, len(ds))
        if self.max_train_records is not None:
            keep = keep[: self.max_train_records]
        if not keep:
            raise ValueError(f"{task.name} train split has no record with a report")
        self.train_set = Subset(ds, keep)
        for name in self.zero_shot_tasks:
            t = get_task(name, root=self.task_roots.get(name), seed=self.seed)
            split = cached_split(t, "val", self.preset)
            labels = labels_by_name(t, split.record_ids, self.zero_shot_classes[name])
            vds: Dataset = CachedECGDataset(split, labels=labels)
            if self.max_val_records is not None:
                vds = Subset(vds, range(min(self.max_val_records, len(vds))))  # type: ignore[arg-type]
            self.val_sets.append(vds)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        return ResumableLoader(self.train_set, self.batch_size, seed=self.seed, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> Any:
        return [DataLoader(v, batch_size=self.val_batch_size, shuffle=False, num_workers=self.num_workers) for v in self.val_sets]
