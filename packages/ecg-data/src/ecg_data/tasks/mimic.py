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


def mimic_labels(reader: DatasetReader) -> LabelResult:
    md = reader.metadata()
    return LabelResult(labels=pd.DataFrame(index=pd.Index(md.index, name="record_id")))


def subject_split(reader: DatasetReader, labels: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    md = reader.metadata()
    return group_split(md.loc[labels.index, "patient_id"], seed, fractions=MIMIC_FRACTIONS, salt=reader.name)
