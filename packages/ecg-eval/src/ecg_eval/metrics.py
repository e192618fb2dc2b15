"""AUROC per class and macro, for multi-label scores.

Why our own: the scores are independent per class (sigmoid or cosine, never a softmax across classes), and a
class without a positive or without a negative in the evaluated split has no AUROC. Such classes are
excluded *and listed*, never silently averaged in and never a crash (sklearn raises on them).
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


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve of one binary label (Mann-Whitney U with mid-ranks for ties).

    Raises ValueError when ``y`` has no positive or no negative, because the AUROC is undefined there.
    """
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf")
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
