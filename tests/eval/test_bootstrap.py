"""Paired bootstrap: shared indices, redrawn degenerate resamples, weighted AUROC, CI coverage."""

import numpy as np
import pytest
from scipy.stats import norm

from ecg_eval.bootstrap import (
    bootstrap_ci,
    bootstrap_seed,
    draw_resamples,
    paired_difference_ci,
    weighted_auroc,
)
from ecg_eval.metrics import auroc


def test_seed_depends_only_on_task_records_and_seed() -> None:
    ids = [str(i) for i in range(10)]
    assert bootstrap_seed("t", ids, 0) == bootstrap_seed("t", list(ids), 0)
    assert bootstrap_seed("t", ids, 0) != bootstrap_seed("t", ids, 1)
    assert bootstrap_seed("t", ids, 0) != bootstrap_seed("u", ids, 0)
    assert bootstrap_seed("t", ids, 0) != bootstrap_seed("t", ids[::-1], 0)


def test_same_indices_for_every_method() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (50, 3))
    seed = bootstrap_seed("task", [str(i) for i in range(50)], 0)
    a = draw_resamples(y, seed=seed, n_resamples=100)
    b = draw_resamples(y, seed=seed, n_resamples=100)  # another method: same labels, same seed
    np.testing.assert_array_equal(a.indices, b.indices)


def test_degenerate_resamples_are_redrawn() -> None:
    y = np.zeros((20, 1), dtype=int)
    y[3, 0] = 1  # a single positive: ~36% of plain resamples would miss it
    res = draw_resamples(y, seed=0, n_resamples=300)
    assert res.n_redrawn > 0
    assert np.all((res.indices == 3).any(axis=1))  # every kept resample contains the positive


def test_weighted_auroc_equals_auroc_of_explicit_resample() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.normal(size=40) + y, 1)
    res = draw_resamples(y[:, None], seed=5, n_resamples=20)
    got = weighted_auroc(y, s, res.counts())
    want = [auroc(y[idx], s[idx]) for idx in res.indices]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_paired_difference_of_identical_scores_is_zero() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (60, 2))
    s = rng.normal(size=(60, 2)) + y
    res = draw_resamples(y, seed=1, n_resamples=200)
    assert paired_difference_ci(y, s, s, res) == (0.0, 0.0)


def _coverage(n_datasets: int, n: int, n_resamples: int, seed: int) -> float:
    """Binormal scores: positives N(d, 1), negatives N(0, 1) -> true AUROC = Phi(d / sqrt(2))."""
    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(n_datasets):
        y = (np.arange(n) % 2).astype(int)[:, None]
        s = rng.normal(size=(n, 1)) + d * y
        res = draw_resamples(y, seed=seed * 100_000 + k, n_resamples=n_resamples)
        lo, hi = bootstrap_ci(y, s, ["c"], res).macro
        hits += lo <= true_auc <= hi
    return hits / n_datasets


def test_ci_coverage_fast() -> None:
    # 200 datasets: the coverage estimate has SE ~1.5 points around 95%; percentile bootstrap at n=80
    # is known to under-cover slightly, hence the asymmetric band.
    cov = _coverage(n_datasets=200, n=80, n_resamples=400, seed=7)
    assert 0.88 <= cov <= 0.99, cov


@pytest.mark.slow
def test_ci_coverage_full_1000_resamples() -> None:
    cov = _coverage(n_datasets=500, n=200, n_resamples=1000, seed=11)
    assert 0.91 <= cov <= 0.98, cov


def test_chunked_resampled_auroc_equals_unchunked() -> None:
    from ecg_eval.bootstrap import resampled_auroc

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (30, 2))
    s = rng.normal(size=(30, 2)) + y
    res = draw_resamples(y, seed=2, n_resamples=50)
    np.testing.assert_allclose(resampled_auroc(y, s, res, [0, 1], max_cells=70), resampled_auroc(y, s, res, [0, 1]))
