"""Each condition's intervals, measured with an independent detector, fall in its clinical range.

Measurements come from ``measure.py`` (neurokit2 R peaks + a median-beat global delineator); the
generator's parameters are never read. Records use the ``clean`` difficulty (no noise, moderate to
marked severity) and three patients per condition; the test checks the median over those patients.
Clinical ranges: Surawicz et al. 2009 (AHA/ACCF/HRS recommendations for the standardization and
interpretation of the ECG, parts III-V) and the PTB-XL statement definitions.
"""

from __future__ import annotations

import numpy as np
import pytest
from measure import Measured, measure

from ecg_data.synthetic import forced, generate_records

N_PATIENTS = 3


def _measure(rhythm: str, extras: tuple[str, ...] = (), acute: bool = False, seed: int = 11) -> list[Measured]:
    cs = forced(rhythm, list(extras), acute)
    recs = generate_records(N_PATIENTS, seed, "clean", conditions=cs)
    return [measure(r.signal, has_p=rhythm in ("SR", "SB", "STACH"), despike=rhythm == "PACE") for r in recs]


def med(ms: list[Measured], f) -> float:
    return float(np.median([f(m) for m in ms]))


@pytest.fixture(scope="module")
def normal() -> list[Measured]:
    return _measure("SR")


def test_normal_sinus(normal):
    assert 60 <= med(normal, lambda m: m.hr) <= 100
    assert 110 <= med(normal, lambda m: m.pr_ms) <= 200
    assert 60 <= med(normal, lambda m: m.qrs_ms) < 110
    assert 350 <= med(normal, lambda m: m.qtc_bazett_ms) <= 450
    assert -30 <= med(normal, lambda m: m.axis_deg) <= 90
    assert med(normal, lambda m: m.rr_cv) < 0.05


def test_brady_and_tachycardia():
    assert med(_measure("SB"), lambda m: m.hr) < 60
    assert med(_measure("STACH"), lambda m: m.hr) > 100


def test_atrial_fibrillation_irregular():
    af = _measure("AF")
    assert med(af, lambda m: m.rr_cv) > 0.1
    assert all(m.rr_cv > 0.08 for m in af)


def test_atrial_flutter_regular_block():
    afl = _measure("AFL")
    assert all(m.rr_cv < 0.03 for m in afl)
    assert all(60 <= m.hr <= 170 for m in afl)


def test_first_degree_av_block(normal):
    avb = _measure("SR", ("1AVB",))
    assert med(avb, lambda m: m.pr_ms) > 200
    assert med(avb, lambda m: m.pr_ms) > med(normal, lambda m: m.pr_ms) + 60


@pytest.mark.parametrize("block", ["LBBB", "RBBB"])
def test_bundle_branch_blocks_wide_qrs(block):
    ms = _measure("SR", (block,))
    assert med(ms, lambda m: m.qrs_ms) >= 120


def test_lbbb_shape():
    ms = _measure("SR", ("LBBB",))
    assert all(m.qrs_net("V1") < 0 for m in ms), "broad QS/rS in V1"
    assert all(m.qrs_net("V6") > 0 for m in ms), "broad R in V6"
    assert all(m.lead("V6")[m.qrs_on : m.qrs_on + 10].min() > -0.05 for m in ms), "no septal q in V6"


def test_rbbb_shape():
    ms = _measure("SR", ("RBBB",))
    assert all(m.qrs_net("V1", last_ms=40) > 0 for m in ms), "terminal R' in V1"
    assert all(m.qrs_net("I", last_ms=40) < 0 for m in ms), "wide terminal S in I"


def test_left_anterior_fascicular_block_axis():
    ms = _measure("SR", ("LAFB",))
    assert all(-90 <= m.axis_deg <= -45 for m in ms)
    assert med(ms, lambda m: m.qrs_ms) < 120


def test_long_qt(normal):
    lqt = _measure("SR", ("LQT",))
    assert med(lqt, lambda m: m.qtc_bazett_ms) > 470
    assert med(lqt, lambda m: m.qt_ms) > med(normal, lambda m: m.qt_ms) + 60


def test_lvh_voltage():
    ms = _measure("SR", ("LVH",))
    sokolow = [-m.lead("V1")[m.qrs_on : m.qrs_off].min() + m.lead("V5")[m.qrs_on : m.qrs_off].max() for m in ms]
    assert min(sokolow) >= 3.5  # Sokolow-Lyon SV1 + RV5 >= 3.5 mV


def test_low_voltage():
    ms = _measure("SR", ("LVOLT",))
    for m in ms:
        assert max(m.qrs_p2p(lead) for lead in ("I", "II", "III", "aVR", "aVL", "aVF")) < 0.5
        assert max(m.qrs_p2p(lead) for lead in ("V1", "V2", "V3", "V4", "V5", "V6")) < 1.0


@pytest.mark.parametrize(
    "territory,leads", [("AMI", ("V2", "V3", "V4")), ("IMI", ("II", "III", "aVF")), ("LMI", ("I", "aVL", "V6"))]
)
def test_acute_infarct_st_elevation_in_territory(territory, leads):
    ms = _measure("SR", (territory,), acute=True)
    for m in ms:
        assert sum(m.st(lead, 40) >= 0.1 for lead in leads) >= 2, f"STE in {leads}"


def _q_wave(m: Measured, lead: str) -> bool:
    """A pathological Q wave: a negative deflection before the R peak, >= 0.1 mV and >= 1/4 of the R wave
    (between the Q/R >= 1/5 and >= 1/3 levels of the Minnesota code's Q-QS items)."""
    x = m.lead(lead)
    w = int(0.05 * m.fs)
    q = -x[m.r_idx - w : m.r_idx].min()
    r = x[m.qrs_on : m.qrs_off].max()
    return bool(q >= 0.1 and q >= max(r, 1e-6) / 4)


@pytest.mark.parametrize(
    "territory,leads", [("IMI", ("II", "III", "aVF")), ("LMI", ("I", "aVL", "V6")), ("AMI", ("V1", "V2", "V3"))]
)
def test_infarct_q_waves(territory, leads, normal):
    ms = _measure("SR", (territory,))
    for m in ms:
        assert sum(_q_wave(m, lead) for lead in leads) >= 2, f"Q waves in {leads}"
    if territory != "AMI":  # normal V1-V3 are rS: their S is a negative deflection too
        assert all(sum(_q_wave(m, lead) for lead in leads) < 2 for m in normal)


def test_ischaemic_st_depression():
    ms = _measure("SR", ("ISC",))
    for m in ms:
        assert sum(m.st(lead, 40) <= -0.05 for lead in ("II", "V4", "V5", "V6")) >= 2


def test_t_inversion(normal):
    tinv = _measure("SR", ("TINV",))
    t_area = lambda m, lead: m.lead(lead)[m.qrs_off + 40 : m.qrs_off + 150].sum()  # noqa: E731
    assert all(t_area(m, "II") > 0 for m in normal)
    assert all(t_area(m, "II") < 0 and t_area(m, "V5") < 0 for m in tinv)


@pytest.mark.parametrize("kind", ["PVC", "PAC"])
def test_premature_beats(kind):
    ms = _measure("SR", (kind,))
    for m in ms:
        rel = m.rr / np.median(m.rr)
        assert rel.min() < 0.8, "a premature beat"
    if kind == "PVC":
        for m in ms:  # compensatory pause: short + long ~ 2 normal intervals
            k = int(np.argmin(m.rr))
            if k + 1 < len(m.rr):
                assert abs((m.rr[k] + m.rr[k + 1]) / np.median(m.rr) - 2) < 0.15


def test_ventricular_pacing():
    ms = _measure("PACE")
    assert all(m.rr_cv < 0.02 for m in ms)
    assert med(ms, lambda m: m.qrs_ms) >= 120
