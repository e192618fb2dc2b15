"""Generator invariants: exact lead relations, determinism, label consistency."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_data.record import LEADS
from ecg_data.synthetic import forced, generate_records
from ecg_data.synthetic.conditions import (
    CPSC_CLASSES,
    EXTRAS,
    PROFILES,
    RHYTHMS,
    SCP_STATEMENTS,
    SNOMED,
    sample_conditions,
)


@pytest.fixture(scope="module")
def records():
    return list(generate_records(40, seed=123))


def test_shape_dtype_and_order(records):
    for r in records:
        assert r.signal.shape == (12, 5000) and r.signal.dtype == np.float32
        assert r.fs == 500.0
        assert np.isfinite(r.signal).all()
        assert (r.signal.std(axis=1) > 0.01).all(), "no flat lead"
    assert len(LEADS) == 12


def test_einthoven_goldberger_exact(records):
    for r in records:
        i, ii, iii, avr, avl, avf = r.signal[:6]
        two = np.float32(2)
        assert np.array_equal(iii, ii - i)
        assert np.array_equal(avr, -(i + ii) / two)
        assert np.array_equal(avl, i - ii / two)
        assert np.array_equal(avf, ii - i / two)
        # and the sum rule that follows from them (within float32 rounding)
        np.testing.assert_allclose(avr + avl + avf, 0, atol=1e-5)


def test_same_seed_same_corpus_and_random_access():
    a = list(generate_records(6, seed=7))
    b = list(generate_records(6, seed=7))
    c = list(generate_records(6, seed=8))
    tail = list(generate_records(3, seed=7, start=3))
    for x, y in zip(a, b):
        assert np.array_equal(x.signal, y.signal)
        assert (x.scp_codes, x.report, x.patient_id, x.cpsc_classes) == (
            y.scp_codes,
            y.report,
            y.patient_id,
            y.cpsc_classes,
        )
    for x, y in zip(a[3:], tail):
        assert np.array_equal(x.signal, y.signal) and x.report == y.report
    assert not all(np.array_equal(x.signal, y.signal) for x, y in zip(a, c))


def test_labels_are_consistent_with_statement_table(records):
    table = {row[0]: row for row in SCP_STATEMENTS}
    snomed = set(SNOMED.values())
    for r in records:
        assert r.scp_codes and all(code in table for code in r.scp_codes)
        rhythm = [c for c in r.scp_codes if table[c][4] == 1.0]
        assert len(rhythm) == 1, r.scp_codes
        diag = [c for c in r.scp_codes if table[c][2] == 1.0]
        if "NORM" in diag:
            assert diag == ["NORM"], "NORM excludes every other diagnostic statement"
        assert set(r.cpsc_classes) <= set(CPSC_CLASSES)
        assert ("NORM" in r.cpsc_classes) == (r.cpsc_classes == ["NORM"])
        assert set(r.snomed_codes) <= snomed


def test_sampled_combinations_are_physiological():
    rng = np.random.default_rng(0)
    seen = set()
    for prof in ("ptbxl", "cpsc"):
        for _ in range(3000):
            cs = sample_conditions(rng, PROFILES[prof])
            s = set(cs.all)
            seen |= s
            assert not ({"AF", "AFL", "PACE"} & s and {"1AVB", "PAC"} & s)
            assert not {"LBBB", "RBBB"} <= s
            assert not ("PACE" in s and {"LBBB", "RBBB", "LAFB"} & s)
            assert not (cs.acute and not {"AMI", "IMI", "LMI"} & s)
    assert seen == set(RHYTHMS) | set(EXTRAS), "every condition occurs"


def test_forced_rejects_impossible_combinations():
    with pytest.raises(ValueError, match="cannot combine"):
        forced("AF", ["1AVB"])
    with pytest.raises(ValueError, match="cannot combine"):
        forced("SR", ["LBBB", "RBBB"])
    with pytest.raises(ValueError, match="unknown"):
        forced("SR", ["XYZ"])
    assert forced("AF", ["LBBB"]).all == ["AF", "LBBB"]


def test_difficulty_changes_noise_not_labels():
    clean = next(generate_records(1, 5, "clean"))
    hard = next(generate_records(1, 5, "hard"))
    assert clean.scp_codes.keys() == hard.scp_codes.keys()
    hp = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731 - high-frequency content
    assert hp(hard.signal) > hp(clean.signal)
    with pytest.raises(ValueError, match="unknown difficulty"):
        next(generate_records(1, 0, "impossible"))
