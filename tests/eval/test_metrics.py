"""AUROC against hand-computed values; excluded classes are listed, never a crash."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecg_eval.metrics import auroc, multilabel_auroc


def test_auroc_hand_computed() -> None:
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3 of 4 pairs ordered -> 0.75
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    # one tie between a positive and a negative counts one half: pairs 1, 0.5, 1, 1 of 4 -> 0.875
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.5, 0.5, 0.8])) == pytest.approx(0.875)
    assert auroc(np.array([1, 0, 1, 0]), np.full(4, 0.3)) == pytest.approx(0.5)  # identical scores
    assert auroc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.9])) == pytest.approx(0.0)


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)  # rounding creates many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_undefined_auroc_raises() -> None:
    with pytest.raises(ValueError, match="0 positives"):
        auroc(np.zeros(4), np.arange(4.0))


def test_excluded_classes_listed_not_averaged() -> None:
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.3], [0.8, 0.3, 0.1], [0.7, 0.4, 0.5]])
    rep = multilabel_auroc(y, s, ["X", "NOPOS", "NONEG"])
    assert rep.per_class == {"X": pytest.approx(1.0)}
    assert rep.macro == pytest.approx(1.0)
    assert set(rep.excluded) == {"NOPOS", "NONEG"}
    assert "no positive" in rep.excluded["NOPOS"] and "no negative" in rep.excluded["NONEG"]


def test_all_classes_excluded_gives_none_not_crash() -> None:
    rep = multilabel_auroc(np.zeros((3, 2)), np.random.rand(3, 2), ["a", "b"])
    assert rep.macro is None and len(rep.excluded) == 2


def test_midranks_match_scipy() -> None:
    from scipy.stats import rankdata

    from ecg_eval.metrics import midranks

    s = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 0.5])
    np.testing.assert_array_equal(midranks(s), rankdata(s))
