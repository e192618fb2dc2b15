"""AUROC per class and macro, for multi-label scores.

Why our own: the scores are independent per class (sigmoid or cosine, never a softmax across classes), and a
class without a positive or without a negative in the evaluated split has no AUROC. Such classes are
excluded *and listed*, never silently averaged in and never a crash (sklearn raises on them).

The project's one AUROC: the harness and the in-training zero-shot validation (``ecg_text_align.zeroshot``)
both call it. Validated against ``sklearn.metrics.roc_auc_score``: equal to 1e-16 with ties
(``tests/eval/test_metrics.py``), and faster (17x in the project's benchmark; 4.7x measured on a busy 2-core
machine at N = 20,000), since it is one sort plus mid-ranks in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def midranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (numpy only; ecg-eval does not depend on scipy)."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    group_rank = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def _binary_scores(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One binary label and its scores as flat bool / float64 arrays; mismatched lengths or NaN/inf raise."""
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf")
    return y, s


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve of one binary label (Mann-Whitney U with mid-ranks for ties).

    Raises ValueError when ``y`` has no positive or no negative, because the AUROC is undefined there.
    """
    y, s = _binary_scores(y, s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC undefined: {n_pos} positives and {n_neg} negatives")
    ranks = midranks(s)  # average ranks: a tie between a positive and a negative counts one half
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def exclusion_reason(y: np.ndarray) -> str | None:
    """Why a label column cannot be scored, or None when it can."""
    n_pos = int(np.asarray(y).astype(bool).sum())
    if n_pos == 0:
        return "no positive in the evaluated split"
    if n_pos == len(y):
        return "no negative in the evaluated split"
    return None


@dataclass
class AUROCReport:
    """Per-class AUROC of the evaluable classes, their macro mean, and the excluded classes with reasons."""

    per_class: dict[str, float]
    macro: float | None
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def evaluated(self) -> list[str]:
        return list(self.per_class)


def evaluable_mask(y_true: np.ndarray) -> np.ndarray:
    """(C,) bool: classes with at least one positive and one negative."""
    y = np.asarray(y_true).astype(bool)
    pos = y.sum(axis=0)
    return (pos > 0) & (pos < y.shape[0])


def multilabel_auroc(y_true: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> AUROCReport:
    """Per-class and macro AUROC of an (N, C) label matrix against (N, C) scores, classes selected by name order."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    classes = list(classes)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"labels {y_true.shape} and scores {scores.shape} must both be (N, C)")
    if y_true.shape[1] != len(classes):
        raise ValueError(f"{len(classes)} class names for {y_true.shape[1]} label columns")
    per_class: dict[str, float] = {}
    excluded: dict[str, str] = {}
    for j, name in enumerate(classes):
        reason = exclusion_reason(y_true[:, j])
        if reason is not None:
            excluded[name] = reason
            continue
        per_class[name] = auroc(y_true[:, j], scores[:, j])
    macro = float(np.mean(list(per_class.values()))) if per_class else None
    return AUROCReport(per_class=per_class, macro=macro, excluded=excluded)


def macro_auroc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Macro AUROC over evaluable columns (None when no column is evaluable); for model selection."""
    names = [str(j) for j in range(np.asarray(y_true).shape[1])]
    return multilabel_auroc(y_true, scores, names).macro


#: A class with fewer test positives than this is flagged on the leaderboard: its AUROC rests on a handful of records.
FEW_POSITIVES = 5


def test_positives(y_true: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Positive records per class (name -> count) in a label matrix."""
    y = np.asarray(y_true)
    return {c: int(y[:, j].sum()) for j, c in enumerate(classes)}


# --- thresholded metrics: F1 and accuracy ------------------------------------------------------------------------


def f1_counts(tp: np.ndarray | int, fp: np.ndarray | int, n_pos: int) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) with FN = n_pos - TP; 0 where the denominator is 0 (nothing to find, nothing said)."""
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    denom = tp + fp + n_pos
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def binary_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 of 0/1 predictions against 0/1 labels (0.0 when there is neither a positive nor a positive prediction)."""
    y = np.asarray(y).astype(bool).ravel()
    pred = np.asarray(pred).astype(bool).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"labels {y.shape} and predictions {pred.shape} differ in length")
    return float(f1_counts(int((y & pred).sum()), int((~y & pred).sum()), int(y.sum())))


def max_f1_threshold(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """``(max F1, threshold)`` over every cut ``s >= t`` with ``t`` one of the observed scores.

    Why every observed score: F1 only changes where the cut passes a score, so these cuts are exhaustive. Ties in
    F1 go to the higher threshold (fewer positive calls). Raises ValueError without a positive (F1 is 0 at every cut).
    """
    y, s = _binary_scores(y, s)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("max-F1 undefined: no positive")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # cut after the last record of each group of tied scores
    f1 = f1_counts(tp[last], fp[last], n_pos)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    return float(f1[best]), float(s_sorted[last][best])


def accuracy_at(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    """Fraction of records where ``s >= threshold`` equals the label."""
    y = np.asarray(y).astype(bool).ravel()
    return float(np.mean((np.asarray(s, dtype=np.float64).ravel() >= threshold) == y))


def threshold_metrics(
    y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray, s_test: np.ndarray, classes: Sequence[str]
) -> dict:
    """Per-class F1 and accuracy on test at the max-F1 threshold chosen on **validation**, plus the
    test-chosen ("oracle") max-F1 and accuracy the MERL/MELP zero-shot code reports, for comparison.

    A class is excluded (listed with the reason) when validation has no positive (no threshold can be chosen)
    or test has no positive or no negative. Macro = mean over the evaluated classes.
    """
    y_val, y_test = np.asarray(y_val), np.asarray(y_test)
    s_val, s_test = np.asarray(s_val, dtype=np.float64), np.asarray(s_test, dtype=np.float64)
    per: dict[str, dict[str, float]] = {}
    excluded: dict[str, str] = {}
    for j, name in enumerate(classes):
        if not y_val[:, j].astype(bool).any():
            excluded[name] = "no positive in the validation split (no threshold to choose)"
            continue
        reason = exclusion_reason(y_test[:, j])
        if reason is not None:
            excluded[name] = reason
            continue
        val_f1, thr = max_f1_threshold(y_val[:, j], s_val[:, j])
        oracle_f1, oracle_thr = max_f1_threshold(y_test[:, j], s_test[:, j])
        per[name] = {
            "threshold": thr,
            "val_f1": val_f1,
            "f1": binary_f1(y_test[:, j], s_test[:, j] >= thr),
            "accuracy": accuracy_at(y_test[:, j], s_test[:, j], thr),
            "oracle_threshold": oracle_thr,
            "oracle_max_f1": oracle_f1,
            "oracle_accuracy": accuracy_at(y_test[:, j], s_test[:, j], oracle_thr),
        }
    keys = ("f1", "accuracy", "oracle_max_f1", "oracle_accuracy")
    macro = {k: (float(np.mean([v[k] for v in per.values()])) if per else None) for k in keys}
    return {"threshold_split": "val", "macro": macro, "per_class": per, "excluded_classes": excluded}
