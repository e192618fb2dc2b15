"""Readers and tasks on the real samples in ../shared (skipped when absent)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from dr_fixtures import CONDITIONS

from ecg_data.readers import get_reader
from ecg_data.readers.csn import CONDITIONS_FILE
from ecg_data.tasks import rule_task

pytestmark = pytest.mark.shared


@pytest.mark.parametrize("fs", [100, 500])
def test_ptbxl500_reads_like_wfdb(ptbxl500: Path, fs: int):
    import wfdb

    r = get_reader("ptbxl", ptbxl500, fs=fs)
    md = r.metadata()
    assert len(md) == 500 and md.index[0] == "1" and md.index[-1] == "500"
    assert set(md["strat_fold"]) == set(range(1, 11))
    assert md["report"].notna().sum() == 499
    for rid in ("1", "250"):
        rec = r.read(rid)
        raw, fields = wfdb.rdsamp(str(ptbxl500 / md.loc[rid, "path"]))
        assert fields["sig_name"][3] == "AVR"  # upper-case names in the files, mapped by name
        assert rec.signal.shape == (12, 10 * fs) and rec.fs == fs
        np.testing.assert_array_equal(rec.signal, raw.T.astype(np.float32))
    assert get_reader("ptbxl", ptbxl500, fs=fs).read("1").patient_id == "15709"


def test_ptbxl500_super_spot_checks(ptbxl500: Path):
    """Hand-checked in ptbxl_database.csv + scp_statements.csv (diagnostic_class of diagnostic codes)."""
    t = rule_task("ptbxl_super", root=ptbxl500)
    assert t.classes == ["CD", "HYP", "MI", "NORM", "STTC"]

    def pos(rid):
        return {c for c, v in zip(t.classes, t.y([rid])[0]) if v}

    assert pos("1") == {"NORM"}  # {'NORM': 100, 'LVOLT': 0, 'SR': 0}; LVOLT is not diagnostic
    assert pos("8") == {"MI"}  # {'IMI': 35, 'ABQRS': 0, 'SR': 0}
    assert pos("22") == {"STTC"}  # {'NDT': 100, 'SR': 0}
    assert pos("30") == {"HYP"}  # {'LVH': 100, 'SR': 0}
    assert pos("32") == {"CD"}  # {'LPFB': 100, 'SR': 0}
    assert pos("39") == {"MI", "STTC"}  # IMI 15 (likelihood kept), LNGQT/NST_/DIG -> STTC
    assert "17" not in t.labels.index and "17" in t.excluded  # {'AFLT': 100, ...}: no diagnostic statement
    folds = get_reader("ptbxl", ptbxl500).metadata()["strat_fold"]
    assert folds["8"] == 9 and "8" in t.splits["val"] and folds["1"] == 3 and "1" in t.splits["train"]


def test_ptbxl500_super_matches_independent_aggregation(ptbxl500: Path):
    """Recompute the super labels straight from the two CSVs (plain pandas) and compare all 500."""
    import ast

    db = pd.read_csv(ptbxl500 / "ptbxl_database.csv", index_col="ecg_id")
    st = pd.read_csv(ptbxl500 / "scp_statements.csv", index_col=0)
    st = st[st["diagnostic"] == 1]
    t = rule_task("ptbxl_super", root=ptbxl500)
    n_labelled = 0
    for ecg_id, codes in db["scp_codes"].items():
        want = {st.loc[c, "diagnostic_class"] for c in ast.literal_eval(codes) if c in st.index}
        if not want:
            assert str(ecg_id) not in t.labels.index
            continue
        n_labelled += 1
        got = {c for c, v in zip(t.classes, t.y([str(ecg_id)])[0]) if v}
        assert got == want & set(t.classes), ecg_id
    assert len(t.labels) == n_labelled


def test_ptbxl500_tasks_folds_and_patients(ptbxl500: Path):
    md = get_reader("ptbxl", ptbxl500).metadata()
    for kind in ("super", "sub", "form", "rhythm", "all"):
        t = rule_task(f"ptbxl_{kind}", root=ptbxl500)
        f = {s: set(md.loc[v, "strat_fold"]) for s, v in t.splits.items()}
        assert f["train"] <= set(range(1, 9)) and f["val"] == {9} and f["test"] == {10}
        pats = {s: set(md.loc[v, "patient_id"]) for s, v in t.splits.items()}
        assert (
            not (pats["train"] & pats["val"])
            and not (pats["train"] & pats["test"])
            and not (pats["val"] & pats["test"])
        )
        assert list(t.labels.columns) == t.classes == sorted(t.classes)
        for c in t.classes:  # every kept class has a positive in every split
            assert all(t.labels.loc[v, c].sum() > 0 for v in t.splits.values())
        assert set(t.labels.index) == set().union(*map(set, t.splits.values()))


def test_cinc_sample_through_cpsc2018_reader(cinc_sample: Path):
    r = get_reader("cpsc2018", cinc_sample)
    md = r.metadata()
    assert len(md) == 50 and not r.skipped
    assert md.loc["JS20000", "codes"] == ["284470004", "427084000", "698252002", "55930002"]
    assert md.loc["JS20000", "cpsc_classes"] == ["PAC"] and md.loc["JS20000", "sex"] == "F"
    for rid in ("JS20000", "E07500", "HR06000"):  # HR* headers write units as 'mv'
        rec = r.read(rid)
        val = scipy.io.loadmat(str(cinc_sample / f"{rid}.mat"))["val"]
        np.testing.assert_allclose(rec.signal, val / 1000.0, atol=1e-7)  # all leads listed I..V6, gain 1000
    t = rule_task("cpsc2018", root=cinc_sample)
    assert "PAC" in t.labels.columns or "PAC" in t.dropped
    assert set(t.excluded) == {rid for rid, cl in md["cpsc_classes"].items() if not cl}


def test_js_records_through_csn_reader(cinc_sample: Path, tmp_path: Path):
    """Build the ecg-arrhythmia layout from the JS* records by symlinks (nothing copied)."""
    root = tmp_path / "csn"
    d = root / "WFDBRecords" / "20" / "200"
    d.mkdir(parents=True)
    for f in sorted(cinc_sample.glob("JS*")):
        (d / f.name).symlink_to(f)
    pd.DataFrame(CONDITIONS, columns=["Acronym Name", "Full Name", "Snomed_CT"]).to_csv(
        root / CONDITIONS_FILE, index=False
    )
    r = get_reader("csn", root)
    md = r.metadata()
    assert len(md) == 20 and md.index[0] == "JS20000"
    assert md.loc["JS20000", "path"] == "WFDBRecords/20/200/JS20000"
    assert r.read("JS20001").signal.shape == (12, 5000)
    names = r.class_names()
    assert names["426783006"] == "SR" and names["284470004"] == "SNOMED_284470004"
    from ecg_data.tasks.cinc import csn_labels

    res = csn_labels(r, min_positives=5)
    counts = pd.Series([c for codes in md["codes"] for c in codes]).value_counts()
    for code, n in counts.items():  # exact-code counts decide kept vs dropped
        assert (names[code] in res.labels.columns) == (n >= 5)
        if names[code] in res.labels.columns:
            assert res.labels[names[code]].sum() == n
