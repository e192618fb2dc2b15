"""Reports say what the labels say, at the configured noise rate (measured over many records)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ecg_data.synthetic import generate_records, with_difficulty
from ecg_data.synthetic.conditions import PROFILES, sample_conditions
from ecg_data.synthetic.reports import machine_statements

# Independent of the template table: what a reader of the report would search for.
KEYWORDS = {
    "SR": r"\bsinus rhythm",
    "SB": r"sinus bradycardia",
    "STACH": r"sinus tachycardia",
    "AF": r"atrial fibrillation",
    "AFL": r"atrial flutter",
    "PACE": r"pace",
    "1AVB": r"(1st|first) degree",
    "LBBB": r"left bundle|\blbbb",
    "RBBB": r"right bundle|\brbbb",
    "LAFB": r"anterior (fascicular|hemiblock)",
    "LVH": r"lvh|left ventricular hypertrophy",
    "AMI": r"anter\w* (infarct|myocardial|st elev|stemi)",
    "IMI": r"inferior (infarct|myocardial|st elev|stemi)",
    "LMI": r"lateral (infarct|myocardial|st elev|stemi)",
    "ISC": r"st depression|ischemia",
    "TINV": r"t wave",
    "PVC": r"pvc|ventricular (premature|complex)|premature ventricular",
    "PAC": r"atrial (premature|contraction)|premature atrial",
    "LVOLT": r"low (qrs )?voltage",
    "LQT": r"\bqt\b",
}


def mentioned(report: str, cond: str) -> bool:
    return re.search(KEYWORDS[cond], report.lower()) is not None


def _rates(omit: float, wrong: float, n: int, seed: int = 0) -> tuple[float, float, int]:
    """Share of true findings mentioned, and share of records with a finding they do not have."""
    rng = np.random.default_rng(seed)
    hit = total = spurious_recs = 0
    for _ in range(n):
        cs = sample_conditions(rng, PROFILES["ptbxl"])
        stmts, _ = machine_statements(cs, rng, omit, wrong)
        text = " ".join(stmts)
        for c in cs.all:
            total += 1
            hit += mentioned(text, c)
        others = [c for c in KEYWORDS if c not in cs.all and not (c == "SR" and cs.rhythm in ("SB", "STACH"))]
        # a made-up statement shows up as a finding the record does not have
        spurious_recs += any(mentioned(text, c) for c in others if c not in ("LAFB", "ISC", "TINV"))
    return hit / total, spurious_recs / n, total


def test_noise_free_reports_mention_every_finding():
    mention, spurious, total = _rates(0.0, 0.0, 3000)
    assert total > 4000
    assert mention == 1.0


@pytest.mark.parametrize("omit,wrong", [(0.1, 0.05), (0.3, 0.2)])
def test_report_noise_rate_matches_configuration(omit, wrong):
    mention, spurious, total = _rates(omit, wrong, 6000, seed=1)
    se = np.sqrt(omit * (1 - omit) / total)
    assert abs((1 - mention) - omit) < 4 * se + 0.01
    # spurious statements of rhythms/findings overlapping the keyword set are detected a bit less often
    assert wrong * 0.6 < spurious < wrong + 0.03


def test_generated_records_reports_at_default_rate():
    d = with_difficulty("clean", report_omit=0.2)
    recs = list(generate_records(150, seed=3, difficulty=d))
    found = [mentioned(r.report, c) for r in recs for c in r.meta["conditions"]]
    omitted = [c for r in recs for c in r.meta["report_omitted"]]
    assert len(omitted) == len(found) - sum(found)  # every miss is a recorded omission
    assert 0.1 < 1 - np.mean(found) < 0.3
    for r in recs:
        assert r.report.endswith(".") and r.report_ptbxl
        for c in r.meta["conditions"]:
            assert mentioned(r.report_ptbxl, c) or c in ("PACE", "LVOLT", "PVC", "PAC", "1AVB", "TINV", "LQT")
