"""Deterministic train/val/test splits and the fixed low-label training subsets.

Why files: every method must be scored on the same records, and the 1 %/10 % subsets must be the
same for every method (paired comparison). Splits are computed once from metadata, written
atomically, and read back afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecg_data.paths import stable_hash
from ecg_data.readers.base import is_missing

SPLITS: tuple[str, ...] = ("train", "val", "test")

#: CPSC2018 and CSN: 72/8/20 train/val/test, multilabel-stratified (the project's rule; the MERL/MELP downstream
#: protocol splits CPSC2018 and CSN 70:10:20-ish, and the published tasks use their shipped split files instead).
STRATIFIED_FRACTIONS: tuple[float, float, float] = (0.72, 0.08, 0.20)


def _seed(*parts: object) -> int:
    """A 32-bit seed derived from names and the user seed, so different tasks get different draws."""
    return int(stable_hash(list(map(str, parts)), n=8), 16)


def fold_split(folds: pd.Series, train=range(1, 9), val=(9,), test=(10,)) -> dict[str, list[str]]:
    """PTB-XL: ``strat_fold`` 1-8 train, 9 val, 10 test (Wagner et al. 2020, Sec. "Benchmarking")."""
    f = folds.astype("Int64")
    return {
        "train": f.index[f.isin(list(train))].tolist(),
        "val": f.index[f.isin(list(val))].tolist(),
        "test": f.index[f.isin(list(test))].tolist(),
    }


def stratified_split(
    labels: pd.DataFrame,
    seed: int,
    *,
    groups: pd.Series | None = None,
    fractions: tuple[float, float, float] = STRATIFIED_FRACTIONS,
    salt: str = "",
) -> dict[str, list[str]]:
    """Multilabel-stratified train/val/test split (iterative stratification, Sechidis et al. 2011).

    With ``groups`` (patient ids; None/NaN means "own group") the split is made over groups, whose
    label vector is the OR of their records', so no patient spans two splits.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    ids = labels.index.astype(str)
    if groups is not None:
        g = groups.reindex(labels.index)
        gid = np.array([f"rec:{r}" if is_missing(v) else f"pat:{v}" for r, v in zip(ids, g)])
    else:
        gid = np.array([f"rec:{r}" for r in ids])
    y_groups = pd.DataFrame(labels.to_numpy(dtype=np.int8), index=gid).groupby(level=0, sort=True).max()
    units = y_groups.index.to_numpy()
    y = y_groups.to_numpy()
    _, f_val, f_test = fractions
    rs = _seed("stratified", salt, seed)

    def cut(idx: np.ndarray, test_size: float, rs_: int) -> tuple[np.ndarray, np.ndarray]:
        if len(idx) < 2:
            return idx, idx[:0]
        n_test = max(1, int(round(test_size * len(idx))))
        if n_test >= len(idx):
            return idx[:0], idx
        if y.shape[1] == 0:
            perm = np.random.default_rng(rs_).permutation(len(idx))
            return idx[np.sort(perm[n_test:])], idx[np.sort(perm[:n_test])]
        sss = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=rs_ % (2**31))
        a, b = next(sss.split(np.zeros(len(idx)), y[idx]))
        return idx[np.sort(a)], idx[np.sort(b)]

    rest, test = cut(np.arange(len(units)), f_test, rs)
    train, val = cut(rest, f_val / (1.0 - f_test), rs + 1)
    unit_split = {u: s for s, part in zip(SPLITS, (train, val, test)) for u in units[part]}
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for rid, u in zip(ids, gid):
        out[unit_split[u]].append(rid)
    return out


def group_split(
    groups: pd.Series, seed: int, *, fractions: tuple[float, float, float], salt: str = ""
) -> dict[str, list[str]]:
    """Random split by group (MIMIC-IV-ECG: by ``subject_id``); each split gets >= 1 group when possible."""
    # A record without a group id is its own group (``astype(str)`` would pool them as "None"/NaN).
    g = pd.Series(
        [f"rec:{i}" if is_missing(v) else str(v) for i, v in groups.items()], index=groups.index, dtype=object
    )
    uniq = np.array(sorted(g.unique()))
    perm = np.random.default_rng(_seed("group", salt, seed)).permutation(len(uniq))
    n = len(uniq)
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
    assign = {}
    for rank, i in enumerate(perm):
        assign[uniq[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for rid, v in g.items():
        out[assign[v]].append(str(rid))
    return out


def subset_order(
    train_ids: Sequence[str], labels: pd.DataFrame | None, seed: int, salt: str = ""
) -> tuple[list[str], int]:
    """The fixed order from which every training subset of one seed is a prefix (so subsets are nested).

    Rule: shuffle the training ids with the seed; then move to the front, for each class in canonical
    order that has no positive among the records moved so far, its first positive in the shuffled
    order. A subset of fraction f is ``order[:max(round(f * n), n_cover)]`` where ``n_cover`` is the
    number of records moved (returned with the order): every class with a training positive keeps at least one positive, which
    takes precedence over the exact size.
    """
    ids = list(map(str, train_ids))
    perm = np.random.default_rng(_seed("subset", salt, seed)).permutation(len(ids))
    shuffled = [ids[i] for i in perm]
    front: list[str] = []
    if labels is not None and labels.shape[1] > 0 and ids:
        y = labels.reindex(shuffled).fillna(0).to_numpy(dtype=bool)
        covered = np.zeros(y.shape[1], dtype=bool)
        chosen: set[int] = set()
        for c in range(y.shape[1]):
            if covered[c]:
                continue
            pos = np.flatnonzero(y[:, c])
            if len(pos) == 0:
                continue
            i = int(pos[0])
            chosen.add(i)
            front.append(shuffled[i])
            covered |= y[i]
        rest = [r for k, r in enumerate(shuffled) if k not in chosen]
        return front + rest, len(front)
    return shuffled, 0


def subset_size(fraction: float, n_train: int, n_cover: int) -> int:
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return min(n_train, max(1, n_cover, int(round(fraction * n_train))))
