"""Torch datasets over the record cache: training and evaluation read the memmap, never WFDB files.

Why lazy: a ``np.memmap`` should not be pickled into DataLoader workers (it would copy or fail); the
dataset carries only the cache path and each worker maps the file on first access.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ecg_data.cache import CachedSplit


class CachedECGDataset(Dataset):
    """Items ``{"ecg": Tensor(12, L), "report": str, "labels": Tensor(C) (if given), "index": int}``.

    ``labels`` (N, C) rows follow ``split.index`` order (e.g. ``task.y(split.record_ids)``). A missing
    report is given as ``""`` so the default collate works. ``transform`` (e.g. ``RandomLeadMask``)
    runs on the tensor per item and is never cached.
    """

    def __init__(
        self,
        split: CachedSplit | str | Path,
        labels: np.ndarray | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        split = split if isinstance(split, CachedSplit) else CachedSplit.open(split)
        self.path = split.path
        self.n = len(split)
        self.reports = ["" if r is None else str(r) for r in split.index["report"]]
        self.record_ids = split.record_ids
        self.labels: torch.Tensor | None = None
        if labels is not None:
            labels = np.asarray(labels, dtype=np.float32)
            if labels.ndim != 2 or labels.shape[0] != self.n:
                raise ValueError(f"labels must be (N={self.n}, C), got {labels.shape} for cache {self.path}")
            self.labels = torch.from_numpy(labels)
        self.transform = transform
        self._signals: np.ndarray | None = split.signals

    def __len__(self) -> int:
        return self.n

    @property
    def signals(self) -> np.ndarray:
        if self._signals is None:
            self._signals = np.load(Path(self.path) / "signals.npy", mmap_mode="r")
        return self._signals

    def __getitem__(self, i: int) -> dict[str, Any]:
        ecg = torch.from_numpy(np.array(self.signals[i], dtype=np.float32))
        if self.transform is not None:
            ecg = self.transform(ecg)
        item: dict[str, Any] = {"ecg": ecg, "report": self.reports[i], "index": int(i)}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_signals"] = None  # each worker maps the file itself
        return state
