"""Torch datasets over the record cache: training and evaluation read the memmap, never WFDB files.

Why lazy: a ``np.memmap`` should not be pickled into DataLoader workers (it would copy or fail); the
dataset carries only the cache path and each worker maps the file on first access.
"""

from __future__ import annotations

import warnings
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
    runs on the tensor per item and is never cached. ``ecg`` is always float32 and normalised: a float16
    cache is converted per item, and a cache built with ``normalize="device"`` is normalised per item
    here (the per-batch, on-device path is ``ecg_data.loader``).
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
            labels = np.array(labels, dtype=np.float32)  # a copy: torch wants writable memory
            if labels.ndim != 2 or labels.shape[0] != self.n:
                raise ValueError(f"labels must be (N={self.n}, C), got {labels.shape} for cache {self.path}")
            self.labels = torch.from_numpy(labels)
        self.transform = transform
        self.normalizer = split.normalizer
        self._signals: np.ndarray | None = split.signals

    def __len__(self) -> int:
        return self.n

    @property
    def signals(self) -> np.ndarray:
        if self._signals is None:
            self._signals = np.load(Path(self.path) / "signals.npy", mmap_mode="r")
        return self._signals

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._item(int(i), self._row(int(i)))

    def _row(self, i: int) -> torch.Tensor:
        """A writable float32 copy of row ``i``, normalised if the cache holds pre-normalisation signals."""
        x = torch.from_numpy(np.array(self.signals[i], dtype=np.float32))
        return x if self.normalizer is None else self.normalizer.batch(x[None])[0]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        """Batch fetch, used by DataLoader: without a transform the items' ``ecg`` are read-only views of
        the memmap, so the collate function's stack is the only copy (about 2x the throughput of copying
        per item). Such views must not be modified in place (the mapping is read-only); ``ds[i]`` and any
        item passed through a ``transform`` are writable copies.
        """
        sig = self.signals
        if self.transform is not None or self.normalizer is not None or sig.dtype != np.float32:
            return [self._item(int(i), self._row(int(i))) for i in indices]
        with warnings.catch_warnings():  # "non-writable array": intended, see above
            warnings.simplefilter("ignore", UserWarning)
            return [self._item(int(i), torch.from_numpy(sig[i])) for i in indices]

    def _item(self, i: int, ecg: torch.Tensor) -> dict[str, Any]:
        if self.transform is not None:
            ecg = self.transform(ecg)
        item: dict[str, Any] = {"ecg": ecg, "report": self.reports[i], "index": i}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_signals"] = None  # each worker maps the file itself
        return state
