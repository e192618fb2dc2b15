"""CPSC2018 and CSN tasks: exact SNOMED-CT code labels, 72/8/20 multilabel-stratified splits.

- ``cpsc2018``: the 9 CPSC classes (``ecg_data.readers.snomed``). Records without any of the 9
  classes are not part of the task (listed in ``Task.excluded``; the Challenge release of CPSC2018
  has none, mixed Challenge folders do).
- ``csn``: one class per SNOMED code found in ``# Dx:`` (named by its acronym from
  ``ConditionNames_SNOMED-CT.csv``); a class needs at least ``CSN_MIN_POSITIVES`` positive records in
  the whole dataset and one positive in each of train/val/test, otherwise it is dropped and recorded
  in ``Task.dropped``. Records whose codes are all dropped stay in the task as all-negative.
- Splits: ``STRATIFIED_FRACTIONS`` (72/8/20), iterative multilabel stratification, seeded; over
  patients when the metadata has patient ids (neither dataset does, so over records).
"""

from __future__ import annotations

import pandas as pd

from ecg_data.readers.base import DatasetReader
from ecg_data.readers.snomed import CPSC_CLASSES
from ecg_data.tasks.base import LabelResult, multi_hot
from ecg_data.tasks.splits import stratified_split

#: Minimum positive records (whole dataset) for a CSN class. Our choice: with 20 % test, 50 positives
#: leave ~10 test positives, the least for a per-class AUROC that is not dominated by one record.
CSN_MIN_POSITIVES = 50


def cpsc_labels(reader: DatasetReader) -> LabelResult:
    md = reader.metadata()
    per = {rid: list(cl) for rid, cl in md["cpsc_classes"].items() if len(cl)}
    excluded = {rid: "none of the 9 CPSC2018 classes among its codes" for rid in md.index if rid not in per}
    return LabelResult(labels=multi_hot(per, sorted(CPSC_CLASSES)), excluded=excluded)


def csn_labels(reader: DatasetReader, min_positives: int = CSN_MIN_POSITIVES) -> LabelResult:
    md = reader.metadata()
    names = reader.class_names()  # type: ignore[attr-defined]
    per = {rid: sorted({names[c] for c in codes}) for rid, codes in md["codes"].items()}
    counts = pd.Series([c for cl in per.values() for c in cl], dtype=object).value_counts()
    dropped = {
        c: f"{int(n)} positive record(s) < minimum {min_positives}" for c, n in counts.items() if n < min_positives
    }
    classes = sorted(c for c in counts.index if c not in dropped)
    return LabelResult(labels=multi_hot(per, classes), dropped=dropped)


#: Our CPSC2018 class names -> the published ones (MERL finetune/data_split/icbeb columns).
CPSC_PUBLISHED_NAMES: dict[str, str] = {
    "NORM": "NORM",
    "AF": "AFIB",
    "I-AVB": "1AVB",
    "LBBB": "CLBBB",
    "RBBB": "CRBBB",
    "PAC": "PAC",
    "PVC": "VPC",
    "STD": "STD",
    "STE": "STE",
}


def csn_exact_labels(reader: DatasetReader, min_positives: int | None = None) -> LabelResult:
    """``csn_exact``: exact-code classes counted on the published CSN records present (not on all 45,152)."""
    from ecg_data.tasks.published import published_split

    min_positives = CSN_MIN_POSITIVES if min_positives is None else min_positives
    md = reader.metadata()
    members = {r for v in published_split("csn").values() for r in v if r in md.index}
    names = reader.class_names()  # type: ignore[attr-defined]
    per = {rid: sorted({names[c] for c in codes}) for rid, codes in md["codes"].items() if rid in members}
    counts = pd.Series([c for cl in per.values() for c in cl], dtype=object).value_counts()
    dropped = {
        c: f"{int(n)} positive record(s) among the published CSN records < minimum {min_positives}"
        for c, n in counts.items()
        if n < min_positives
    }
    classes = sorted(c for c in counts.index if c not in dropped)
    return LabelResult(labels=multi_hot(per, classes), dropped=dropped)


def stratified(reader: DatasetReader, labels: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    md = reader.metadata()
    pid = md.loc[labels.index, "patient_id"]
    groups = pid if pid.notna().any() else None
    return stratified_split(labels, seed, groups=groups, salt=reader.name)
