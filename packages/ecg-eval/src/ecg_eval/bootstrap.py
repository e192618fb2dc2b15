"""Paired bootstrap confidence intervals for (macro) AUROC.

Why paired: two methods scored on the same split are compared on the *same* resamples, so the CI of their
difference is not inflated by resampling noise. The resample indices therefore depend only on the task, the
evaluated record ids and a bootstrap seed — never on the method or its scores. A resample in which an
evaluated class has no positive or no negative is redrawn (its AUROC would be undefined).

The AUROC of a resample is computed from multiplicity weights (how often each record was drawn) on the
scores sorted once per class, so 1,000 resamples cost O(1000 * N) per class instead of 1,000 sorts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecg_eval.metrics import evaluable_mask

DEFAULT_RESAMPLES = 1000
MAX_REDRAWS_PER_RESAMPLE = 1000


def bootstrap_seed(task: str, record_ids: Sequence[str], seed: int = 0) -> int:
    """A 63-bit seed from (task name, evaluated record ids in order, bootstrap seed) only."""
    blob = json.dumps([str(task), [str(r) for r in record_ids], int(seed)], separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


@dataclass
class Resamples:
    """(B, N) record indices of B bootstrap resamples, plus how many degenerate draws were replaced."""

    indices: np.ndarray
    seed: int
    n_redrawn: int

    @property
    def n_resamples(self) -> int:
        return int(self.indices.shape[0])

    def counts(self) -> np.ndarray:
        """(B, N) float multiplicity of every record in every resample."""
        return _counts(self.indices)


def _counts(indices: np.ndarray) -> np.ndarray:
    b, n = indices.shape
    flat = (np.arange(b)[:, None] * n + indices).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def draw_resamples(
    y_true: np.ndarray, *, seed: int, n_resamples: int = DEFAULT_RESAMPLES, classes_mask: np.ndarray | None = None
) -> Resamples:
    """Draw ``n_resamples`` index vectors of length N; redraw any in which a checked class is degenerate.

    ``classes_mask`` selects the classes that must stay evaluable (default: those evaluable on the full split).
    """
    y = np.asarray(y_true).astype(bool)
    n, _ = y.shape
    if n == 0:
        raise ValueError("cannot bootstrap an empty split")
    mask = evaluable_mask(y) if classes_mask is None else np.asarray(classes_mask, dtype=bool)
    yc = y[:, mask].astype(np.float64)
    rng = np.random.default_rng(seed)

    def degenerate(idx: np.ndarray) -> np.ndarray:
        counts = _counts(idx)
        pos = counts @ yc
        return ~np.all((pos > 0) & (pos < n), axis=1)

    out = rng.integers(0, n, size=(n_resamples, n))
    bad = degenerate(out)
    redrawn = 0
    for _ in range(MAX_REDRAWS_PER_RESAMPLE):
        if not bad.any():
            break
        k = int(bad.sum())
        redrawn += k
        out[bad] = rng.integers(0, n, size=(k, n))
        bad[bad] = degenerate(out[bad])
    if bad.any():
        raise RuntimeError(
            f"bootstrap: resamples still degenerate after {MAX_REDRAWS_PER_RESAMPLE} redraws; a class has too few "
            "positives or negatives for a bootstrap CI on this split"
        )
    return Resamples(indices=out, seed=int(seed), n_redrawn=redrawn)


def weighted_auroc(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of one class under B weight vectors at once: (N,), (N,), (B, N) -> (B,).

    With integer weights this equals the AUROC of the resample where record i appears weights[b, i] times
    (ties between a positive and a negative count one half, as in ``metrics.auroc``).
    """
    y = np.asarray(y).astype(bool)
    order = np.argsort(s, kind="mergesort")
    s_sorted = np.asarray(s)[order]
    w = weights[:, order]
    pos_w = w * y[order]
    neg_w = w - pos_w
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # tie groups of equal scores
    pos_g = np.add.reduceat(pos_w, starts, axis=1)
    neg_g = np.add.reduceat(neg_w, starts, axis=1)
    neg_below = np.cumsum(neg_g, axis=1) - neg_g
    num = (pos_g * (neg_below + 0.5 * neg_g)).sum(axis=1)
    den = pos_g.sum(axis=1) * neg_g.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def resampled_auroc(
    y_true: np.ndarray, scores: np.ndarray, resamples: Resamples, columns: Sequence[int], *, max_cells: int = 4_000_000
) -> np.ndarray:
    """(B, len(columns)) AUROC of each listed class in each resample (resamples in chunks to bound memory)."""
    b, n = resamples.indices.shape
    step = max(1, max_cells // max(n, 1))
    out = np.empty((b, len(columns)))
    for start in range(0, b, step):
        counts = _counts(resamples.indices[start : start + step])
        for k, j in enumerate(columns):
            out[start : start + step, k] = weighted_auroc(y_true[:, j], scores[:, j], counts)
    return out


@dataclass
class BootstrapCI:
    """Percentile CIs of the macro AUROC and of each evaluated class."""

    level: float
    macro: tuple[float, float]
    per_class: dict[str, tuple[float, float]]
    n_resamples: int
    n_redrawn: int
    seed: int

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "method": "percentile, paired resamples",
            "n_resamples": self.n_resamples,
            "n_redrawn": self.n_redrawn,
            "seed": self.seed,
            "macro_auroc": list(self.macro),
            "per_class_auroc": {k: list(v) for k, v in self.per_class.items()},
        }


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    resamples: Resamples,
    *,
    level: float = 0.95,
) -> BootstrapCI:
    """CIs over the classes evaluable on the full split (the same classes the point estimate averages)."""
    y = np.asarray(y_true)
    cols = [int(j) for j in np.flatnonzero(evaluable_mask(y))]
    if not cols:
        raise ValueError("no evaluable class: every class lacks a positive or a negative")
    per = resampled_auroc(y, np.asarray(scores, dtype=np.float64), resamples, cols)
    macro = per.mean(axis=1)
    return BootstrapCI(
        level=level,
        macro=_interval(macro, level),
        per_class={classes[j]: _interval(per[:, k], level) for k, j in enumerate(cols)},
        n_resamples=resamples.n_resamples,
        n_redrawn=resamples.n_redrawn,
        seed=resamples.seed,
    )


def paired_difference_ci(
    y_true: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, resamples: Resamples, *, level: float = 0.95
) -> tuple[float, float]:
    """CI of macro AUROC(a) - macro AUROC(b) on the same resamples (the reason the indices are shared)."""
    y = np.asarray(y_true)
    cols = [int(j) for j in np.flatnonzero(evaluable_mask(y))]
    a = resampled_auroc(y, np.asarray(scores_a, float), resamples, cols).mean(axis=1)
    b = resampled_auroc(y, np.asarray(scores_b, float), resamples, cols).mean(axis=1)
    return _interval(a - b, level)


class PairingError(ValueError):
    """Two score sets are not on the same test records: a paired statistic would be meaningless."""


def verify_pairing(ids_a: Sequence[str], ids_b: Sequence[str], *, what_a: str = "a", what_b: str = "b") -> None:
    """Refuse (PairingError naming both sides) unless the test record ids are identical, in the same order."""
    a, b = [str(r) for r in ids_a], [str(r) for r in ids_b]
    if a == b:
        return
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    why = (
        f"{len(only_a)} record(s) only in {what_a} (e.g. {only_a[:3]}), {len(only_b)} only in {what_b} (e.g. {only_b[:3]})"
        if only_a or only_b
        else "the same records in a different order"
    )
    raise PairingError(
        f"cannot pair {what_a} ({len(a)} test records) with {what_b} ({len(b)}): {why}; "
        "a paired bootstrap needs identical test record ids"
    )


def paired_resampled_difference(
    pred_a: dict,
    pred_b: dict,
    *,
    task: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    what_a: str = "a",
    what_b: str = "b",
) -> np.ndarray:
    """Resampled macro AUROC(a) - macro AUROC(b) on shared resamples of one test split (predictions files:
    ``record_ids``, ``classes``, ``y_true``, ``scores``); pairing and class lists are verified first."""
    verify_pairing(pred_a["record_ids"], pred_b["record_ids"], what_a=what_a, what_b=what_b)
    if list(pred_a["classes"]) != list(pred_b["classes"]):
        raise PairingError(f"cannot pair {what_a} with {what_b}: different class lists")
    return resampled_macro(pred_a, task=task, n_resamples=n_resamples, seed=seed) - resampled_macro(
        pred_b, task=task, n_resamples=n_resamples, seed=seed
    )


def resampled_macro(pred: dict, *, task: str, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(B,) macro AUROC of one predictions file on the resamples of its test split.

    The resamples are a function of (task, test record ids, seed) only, so every method scored on the same split
    gets the same ones: differences and means over tasks computed resample by resample are paired."""
    y = np.asarray(pred["y_true"])
    res = draw_resamples(
        y, seed=bootstrap_seed(task, list(map(str, pred["record_ids"])), seed), n_resamples=n_resamples
    )
    cols = [int(j) for j in np.flatnonzero(evaluable_mask(y))]
    return resampled_auroc(y, np.asarray(pred["scores"], float), res, cols).mean(axis=1)
