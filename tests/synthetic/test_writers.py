"""Writers produce the real on-disk layouts: wfdb round-trips, the real column sets, the project's readers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb
from scipy.signal import resample_poly

from ecg_data.record import LEADS
from ecg_data.synthetic import generate_records, write_cinc2020, write_mimic_iv_ecg, write_ptbxl
from ecg_data.synthetic.conditions import SCP_STATEMENTS


@pytest.fixture(scope="module")
def recs():
    return list(generate_records(24, seed=5))


@pytest.fixture(scope="module")
def cpsc_recs():
    return list(generate_records(16, seed=5, profile="cpsc"))


@pytest.fixture(scope="module")
def ptbxl_root(recs, tmp_path_factory):
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"), recs)


@pytest.fixture(scope="module")
def mimic_root(recs, tmp_path_factory):
    return write_mimic_iv_ecg(tmp_path_factory.mktemp("mimic"), recs)


@pytest.fixture(scope="module")
def cinc_root(cpsc_recs, tmp_path_factory):
    return write_cinc2020(tmp_path_factory.mktemp("cinc"), cpsc_recs)


# ------------------------------------------------------------------------------------------- PTB-XL
def test_ptbxl_wfdb_roundtrip(ptbxl_root, recs):
    db = pd.read_csv(ptbxl_root / "ptbxl_database.csv", index_col="ecg_id")
    assert list(db.index) == list(range(1, len(recs) + 1))
    for ecg_id in (1, len(recs)):
        row = db.loc[ecg_id]
        sig, f = wfdb.rdsamp(str(ptbxl_root / row.filename_hr))
        assert f["fs"] == 500 and sig.shape == (5000, 12)
        assert f["sig_name"] == ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
        np.testing.assert_allclose(sig.T, recs[ecg_id - 1].signal, atol=0.0005 + 1e-6)  # 1 µV resolution
        lr, f = wfdb.rdsamp(str(ptbxl_root / row.filename_lr))
        assert f["fs"] == 100 and lr.shape == (1000, 12)
        expected = resample_poly(recs[ecg_id - 1].signal.astype(np.float64), 1, 5, axis=1)  # anti-aliased decimation
        np.testing.assert_allclose(lr.T, expected, atol=0.0005 + 1e-6)
        assert eval(row.scp_codes) == recs[ecg_id - 1].scp_codes  # noqa: S307 - the PTB-XL dict-string form
        assert row.report == recs[ecg_id - 1].report_ptbxl


def test_ptbxl_folds_patient_disjoint(ptbxl_root):
    db = pd.read_csv(ptbxl_root / "ptbxl_database.csv")
    assert db.groupby("patient_id").strat_fold.nunique().max() == 1
    assert set(db.strat_fold) <= set(range(1, 11)) and db.strat_fold.nunique() == 10


def test_ptbxl_matches_real_columns_and_statement_semantics(ptbxl_root, ptbxl500):
    real_db = pd.read_csv(ptbxl500 / "ptbxl_database.csv", nrows=2)
    ours = pd.read_csv(ptbxl_root / "ptbxl_database.csv", nrows=2)
    assert list(ours.columns) == list(real_db.columns)
    real = pd.read_csv(ptbxl500 / "scp_statements.csv", index_col=0)
    mine = pd.read_csv(ptbxl_root / "scp_statements.csv", index_col=0)
    assert list(mine.columns) == list(real.columns)
    assert {r[0] for r in SCP_STATEMENTS} == set(mine.index)
    cols = ["diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"]
    pd.testing.assert_frame_equal(mine.loc[:, cols], real.loc[mine.index, cols], check_dtype=False)


def test_ptbxl_header_form_matches_real(ptbxl_root, ptbxl500):
    pattern = re.compile(r"^\d{5}_hr\.dat 16 1000\.0\(0\)/mV 16 0 -?\d+ \d+ 0 (I|II|III|AVR|AVL|AVF|V[1-6])$")
    real = (ptbxl500 / "records500/00000/00001_hr.hea").read_text().splitlines()
    ours = (ptbxl_root / "records500/00000/00001_hr.hea").read_text().splitlines()
    assert ours[0] == real[0]  # "00001_hr 12 500 5000"
    assert all(pattern.match(line) for line in real[1:13]) and all(pattern.match(line) for line in ours[1:13])


# ------------------------------------------------------------------------------------- MIMIC-IV-ECG
def test_mimic_layout_and_lead_order(mimic_root, recs):
    rl = pd.read_csv(mimic_root / "record_list.csv")
    mm = pd.read_csv(mimic_root / "machine_measurements.csv")
    assert list(rl.columns) == ["subject_id", "study_id", "file_name", "ecg_time", "path"]
    assert [f"report_{k}" for k in range(18)] == [c for c in mm.columns if c.startswith("report_")]
    for i in (0, len(recs) - 1):
        p = rl.path[i]
        assert re.fullmatch(r"files/p\d{4}/p\d{8}/s\d{8}/\d{8}", p) and p.startswith(
            f"files/p{str(rl.subject_id[i])[:4]}/"
        )
        sig, f = wfdb.rdsamp(str(mimic_root / p))
        assert f["sig_name"][3:6] == ["aVR", "aVF", "aVL"]
        named = {n: sig[:, k] for k, n in enumerate(f["sig_name"])}
        stacked = np.stack([named[n] for n in LEADS])
        np.testing.assert_allclose(stacked, recs[i].signal, atol=0.0025 + 1e-6)  # gain 200: 5 µV
        statements = [s for s in mm.loc[i, [f"report_{k}" for k in range(18)]] if isinstance(s, str)]
        assert statements == recs[i].meta["statements"]


# ------------------------------------------------------------------------------------------ CinC 2020
def test_cinc_mat_and_header(cinc_root, cpsc_recs, cinc_sample):
    m = scipy.io.loadmat(cinc_root / "A0001.mat")
    assert list(k for k in m if not k.startswith("__")) == ["val"]
    assert m["val"].dtype == np.int16 and m["val"].shape == (12, 5000)
    real_bytes = next(cinc_sample.glob("E*.mat")).read_bytes()[:24]
    ours = (cinc_root / "A0001.mat").read_bytes()[:24]
    assert ours[:4] == real_bytes[:4] and ours[16:24] == real_bytes[16:24]  # MAT v4 int16 'val' header
    sig, f = wfdb.rdsamp(str(cinc_root / "A0001"))
    np.testing.assert_allclose(sig.T, cpsc_recs[0].signal, atol=0.0005 + 1e-6)
    assert f["sig_name"] == list(LEADS)
    dx = next(c for c in f["comments"] if c.startswith("Dx:"))
    assert dx == "Dx: " + ",".join(cpsc_recs[0].snomed_codes)
    assert any(c.startswith("Age:") for c in f["comments"]) and any(c.startswith("Sex:") for c in f["comments"])
    line = (cinc_root / "A0001.hea").read_text().splitlines()[1]
    assert re.fullmatch(r"A0001\.mat 16x1\+24 1000\.0\(0\)/mV 16 0 -?\d+ -?\d+ 0 I", line)


# ------------------------------------------------------------------------- through the project readers
def test_project_readers_and_ptbxl_tasks(ptbxl_root, mimic_root, cinc_root, recs, cpsc_recs):
    readers = pytest.importorskip("ecg_data.readers")
    tasks = pytest.importorskip("ecg_data.tasks")
    r = readers.get_reader("ptbxl", ptbxl_root)
    md = r.metadata()
    assert len(md) == len(recs)
    rec = r.read(md.index[0])
    np.testing.assert_allclose(rec.signal, recs[0].signal, atol=0.0005 + 1e-6)
    table = {row[0]: row for row in SCP_STATEMENTS}
    from ecg_data.tasks.names import canonical_class

    # the label rules (the published ptbxl_* tasks use the real PTB-XL membership, not synthetic ecg_ids)
    for kind, col in (("super", 5), ("sub", 6)):
        task = tasks.rule_task(f"ptbxl_{kind}", root=ptbxl_root)
        for rid, row in task.labels.iterrows():
            expected = {canonical_class(table[c][col]) for c in recs[int(rid) - 1].scp_codes if table[c][2] == 1.0}
            assert {c for c in task.classes if row[c]} == expected & set(task.classes)
    for kind, flag in (("form", 3), ("rhythm", 4)):
        task = tasks.rule_task(f"ptbxl_{kind}", root=ptbxl_root)
        for rid, row in task.labels.iterrows():
            expected = {canonical_class(c) for c in recs[int(rid) - 1].scp_codes if table[c][flag] == 1.0}
            assert {c for c in task.classes if row[c]} == expected & set(task.classes)

    m = readers.get_reader("mimic_iv_ecg", mimic_root, min_report_words=0)  # the round trip keeps short reports
    mmd = m.metadata()
    assert list(mmd.report) == [x.report for x in sorted(recs, key=lambda x: x.meta["index"])]
    np.testing.assert_allclose(m.read(mmd.index[0]).signal, recs[0].signal, atol=0.0025 + 1e-6)

    c = readers.get_reader("cpsc2018", cinc_root)
    cmd = c.metadata()
    assert [sorted(x) for x in cmd.cpsc_classes] == [sorted(x.cpsc_classes) for x in cpsc_recs]
