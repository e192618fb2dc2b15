"""G12EC task: the Challenge 2021 scored classes found in Georgia, 72/8/20 multilabel-stratified by record.

- Classes: ``ecg_data.readers.g12ec.CHALLENGE_SCORED`` (exact SNOMED codes, equivalent pairs merged), named by
  the Challenge abbreviation. A class needs at least ``G12EC_MIN_POSITIVES`` positive records in the whole
  dataset (the same rule and number as CSN, so a 20 % test split has ~10 positives) and one positive in every
  split; otherwise it is dropped and listed in ``Task.dropped``. Records with no scored class stay in the task as
  all-negative (the Challenge scores them too).
- Split: the CPSC/CSN rule (``ecg_data.tasks.cinc.stratified``): no patient ids exist, so records are the unit.
"""

from __future__ import annotations

import pandas as pd

from ecg_data.readers.base import DatasetReader
from ecg_data.tasks.base import LabelResult, multi_hot

G12EC_MIN_POSITIVES = 50


def g12ec_labels(reader: DatasetReader, min_positives: int = G12EC_MIN_POSITIVES) -> LabelResult:
    md = reader.metadata()
    per = {rid: list(cl) for rid, cl in md["scored_classes"].items()}
    counts = pd.Series([c for cl in per.values() for c in cl], dtype=object).value_counts()
    dropped = {
        c: f"{int(n)} positive record(s) < minimum {min_positives}" for c, n in counts.items() if n < min_positives
    }
    classes = sorted(c for c in counts.index if c not in dropped)
    return LabelResult(labels=multi_hot(per, classes), dropped=dropped)
