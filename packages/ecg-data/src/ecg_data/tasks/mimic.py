"""MIMIC-IV-ECG pretraining task: no classes, only a split by ``subject_id`` (patient-disjoint).

Fractions are our choice (no paper fixes them for pretraining): 96 % train, 2 % val (pretraining
validation loss / zero-shot monitoring), 2 % test, drawn over subjects with the seed. Records whose
report is empty or undecodable are still listed here; the cache skips them with the reason.
"""

from __future__ import annotations

import pandas as pd

from ecg_data.readers.base import DatasetReader
from ecg_data.tasks.base import LabelResult
from ecg_data.tasks.splits import group_split

MIMIC_FRACTIONS = (0.96, 0.02, 0.02)
#: The synthetic twin (4,000 records) keeps 8 % for test: at 2 % its test split held 79 reports, and the statement
#: F1 of report generation, a macro mean over ~20 statements most of which had 1-3 positives there, moved by up to
#: 11 points between the 79-record test and the 77-record validation split of one checkpoint (docs/performance.md).
SYNTH_MIMIC_FRACTIONS = (0.90, 0.02, 0.08)


def mimic_labels(reader: DatasetReader) -> LabelResult:
    md = reader.metadata()
    return LabelResult(labels=pd.DataFrame(index=pd.Index(md.index, name="record_id")))


def subject_split(
    reader: DatasetReader, labels: pd.DataFrame, seed: int, fractions: tuple[float, float, float] = MIMIC_FRACTIONS
) -> dict[str, list[str]]:
    md = reader.metadata()
    return group_split(md.loc[labels.index, "patient_id"], seed, fractions=fractions, salt=reader.name)


def synthetic_subject_split(reader: DatasetReader, labels: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    """``subject_split`` with ``SYNTH_MIMIC_FRACTIONS`` (the synthetic twin's larger test split)."""
    return subject_split(reader, labels, seed, SYNTH_MIMIC_FRACTIONS)
