"""A task's input window: the part of every record that every method sees.

Why at the reader: the published CPSC2018 task (MERL, MELP, HeartLang code) feeds the first 2,500 samples
(5 s at 500 Hz) zero-padded to 5,000; doing this before any preprocessing preset makes it part of the task,
so every method gets the same input, and the windowed reader's fingerprint keys its own cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ecg_data.readers.base import DatasetReader
from ecg_data.record import Record


@dataclass(frozen=True)
class InputWindow:
    """Keep ``[start_s, start_s + keep_s)`` of the record, then zero-pad (at the end) to ``pad_to_s``."""

    keep_s: float
    pad_to_s: float
    start_s: float = 0.0
    source: str = ""

    def apply(self, signal: np.ndarray, fs: float) -> np.ndarray:
        start = int(round(self.start_s * fs))
        keep = int(round(self.keep_s * fs))
        total = int(round(self.pad_to_s * fs))
        out = np.zeros((signal.shape[0], total), dtype=signal.dtype)
        part = signal[:, start : start + min(keep, total)]
        out[:, : part.shape[1]] = part
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WindowedReader:
    """Wraps a reader; ``read`` returns the windowed record, ``fingerprint`` includes the window."""

    def __init__(self, inner: DatasetReader, window: InputWindow) -> None:
        self._inner = inner
        self.window = window

    def __getattr__(self, item: str) -> Any:
        inner = self.__dict__.get("_inner")  # absent while unpickling: no recursion
        if inner is None:
            raise AttributeError(item)
        return getattr(inner, item)

    def read(self, record_id: str) -> Record:
        rec = self._inner.read(record_id)
        return replace(
            rec, signal=self.window.apply(rec.signal, rec.fs), meta={**rec.meta, "input_window": self.window.to_dict()}
        )

    def fingerprint(self) -> str:
        w = self.window
        tag = f"{self._inner.fingerprint()}|window:{w.start_s}:{w.keep_s}:{w.pad_to_s}"
        return hashlib.sha256(tag.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"WindowedReader({self._inner!r}, {self.window})"


#: The published CPSC2018 input: first 2,500 samples at 500 Hz (5 s), zero-padded to 5,000 (10 s). Sources read:
#: MERL finetune/finetune_dataset.py (commit 38799b7) and MELP src/melp/datasets/finetune_dataset.py (commit
#: 088741d): ``ecg[:, :2500]`` then ``np.pad(..., (0, 2500))``, "as METS did". HeartLang's code not checked here.
CPSC2018_PUBLISHED_WINDOW = InputWindow(
    keep_s=5.0, pad_to_s=10.0, source="MERL/MELP finetune_dataset.py: first 2500 samples @500 Hz, zero-padded to 5000"
)
