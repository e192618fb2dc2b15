"""PTB-XL tasks ``super``, ``sub``, ``form``, ``rhythm``, ``all`` (Wagner et al. 2020; Strodthoff et al. 2021).

Label rules follow helme/ecg_ptbxl_benchmarking (``code/utils/utils.py``, ``compute_label_aggregations``
and ``select_data``):

- every key of ``scp_codes`` counts, whatever its likelihood (the benchmark ignores likelihoods;
  likelihood 0 means "not stated", not "absent");
- ``super`` / ``sub``: statements with ``diagnostic == 1`` mapped to ``diagnostic_class`` /
  ``diagnostic_subclass`` (NaN subclasses skipped);
- ``form`` / ``rhythm``: the statements flagged ``form == 1`` / ``rhythm == 1``, as themselves;
- ``all``: every statement in ``scp_codes``;
- class names are published ones, without ``scp_statements.csv``'s padding (``NST_`` -> ``NST``,
  ``_AVB`` -> ``AVB``; ``ecg_data.tasks.names``);
- records with no label in the task are not part of it (``select_data`` keeps ``*_len > 0``);
- the benchmark's ``min_samples`` is 0 (every class with a positive kept); here a class is also dropped
  when a split has no positive (recorded in ``Task.dropped``), and records left without a label are
  removed, as ``select_data`` does after its class filter.

Splits: ``strat_fold`` 1-8 train, 9 val, 10 test (patient-disjoint by construction). The registered
``ptbxl_super|sub|form|rhythm`` tasks use the shipped published membership and labels
(``ecg_data.tasks.published``), which agree with these rules record for record; ``ptbxl_all`` and the
synthetic twins use the rules directly.
"""

from __future__ import annotations

import pandas as pd

from ecg_data.readers.base import DatasetReader, clean_text
from ecg_data.record import RecordError
from ecg_data.tasks.base import LabelResult, multi_hot
from ecg_data.tasks.names import unpad
from ecg_data.tasks.splits import fold_split

KINDS = ("super", "sub", "form", "rhythm", "all")
_NO_LABEL = {
    "super": "no diagnostic statement with a diagnostic_class",
    "sub": "no diagnostic statement with a diagnostic_subclass",
    "form": "no form statement",
    "rhythm": "no rhythm statement",
    "all": "no SCP statement",
}


def statement_map(statements: pd.DataFrame, kind: str) -> dict[str, str] | None:
    """SCP code -> task class for ``kind`` (None for ``all``: every code is its own class)."""
    if kind == "all":
        return None
    flag = {"super": "diagnostic", "sub": "diagnostic", "form": "form", "rhythm": "rhythm"}[kind]
    rows = statements[pd.to_numeric(statements[flag], errors="coerce") == 1.0]
    if kind in ("form", "rhythm"):
        return {code: code for code in rows.index}
    col = "diagnostic_class" if kind == "super" else "diagnostic_subclass"
    return {code: str(v) for code, v in rows[col].items() if clean_text(v) is not None}


def record_classes(scp_codes: dict[str, float], mapping: dict[str, str] | None) -> list[str]:
    """The record's task classes, named without PTB-XL's padding underscores."""
    if mapping is None:
        return sorted({unpad(c) for c in scp_codes})
    return sorted({unpad(mapping[c]) for c in scp_codes if c in mapping})


def ptbxl_labels(reader: DatasetReader, kind: str) -> LabelResult:
    if kind not in KINDS:
        raise ValueError(f"unknown PTB-XL task kind {kind!r}; valid: {KINDS}")
    md = reader.metadata()
    mapping = statement_map(reader.statements(), kind)  # type: ignore[attr-defined]
    per_record = {rid: record_classes(d, mapping) for rid, d in md["scp_codes"].items()}
    excluded = {rid: _NO_LABEL[kind] for rid, cl in per_record.items() if not cl}
    kept = [rid for rid in md.index if per_record[rid]]
    classes = sorted({c for rid in kept for c in per_record[rid]})
    labels = multi_hot({rid: per_record[rid] for rid in kept}, classes)
    bad_fold = md.loc[kept, "strat_fold"].isna()
    if bad_fold.any():
        raise RecordError(
            reader.root / "ptbxl_database.csv",
            f"strat_fold missing for ecg_id(s) {bad_fold[bad_fold].index[:5].tolist()}",
        )
    return LabelResult(labels=labels, excluded=excluded, drop_unlabelled=True)


def ptbxl_split(reader: DatasetReader, labels: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    """Seed-independent: the official folds."""
    md = reader.metadata()
    return fold_split(md.loc[labels.index, "strat_fold"])


def label_fn(kind: str):
    return lambda reader: ptbxl_labels(reader, kind)
