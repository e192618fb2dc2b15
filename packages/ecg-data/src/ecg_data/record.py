"""The one in-memory record form every reader returns and every later stage consumes.

Why one form: readers differ in file layout and lead order; everything downstream may assume
(12, T) float32 millivolts in the standard lead order, with the sampling rate beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Standard 12-lead order. Every Record's rows follow it; readers map by header name, never by position.
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


class ECGDataError(Exception):
    """Base class of ecg-data errors."""


class RecordError(ECGDataError):
    """A single record cannot be used. Names the file and the problem (both kept as attributes)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetNotFoundError(ECGDataError):
    """A dataset root does not hold the expected layout; the message says what was expected and where to get it."""


@dataclass
class Record:
    """One 12-lead ECG.

    signal: float32 array (12, T) in millivolts, rows in ``LEADS`` order.
    fs: sampling rate in Hz.
    record_id: the dataset's own id as a string (e.g. PTB-XL ``ecg_id``).
    patient_id: patient/subject id where the dataset has one (used for patient-disjoint splits).
    report: free-text report, or None.
    codes: the dataset's label codes for this record (SCP codes for PTB-XL, SNOMED-CT for CinC).
    meta: anything else the reader knows (age, sex, source path, ...).
    """

    signal: np.ndarray
    fs: float
    record_id: str
    patient_id: str | None = None
    report: str | None = None
    codes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.signal.ndim != 2 or self.signal.shape[0] != len(LEADS):
            raise ValueError(f"record {self.record_id}: signal must be (12, T), got {self.signal.shape}")
        if self.signal.dtype != np.float32:
            self.signal = self.signal.astype(np.float32)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / float(self.fs)
