"""Every bad-input case of issue #2: a single read raises RecordError naming the file and the problem;
metadata problems raise at construction/metadata time; bulk helpers count the skip."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dr_fixtures import LEADS, PTBXL_NAMES, lead_signal, write_challenge, write_wfdb

from ecg_data.readers import get_reader, safe_read
from ecg_data.readers.base import check_signal
from ecg_data.record import RecordError

HR = "records500/00000"


def _raises(reader, rid, file_part: str, problem: str) -> RecordError:
    with pytest.raises(RecordError) as e:
        reader.read(rid)
    assert file_part in e.value.path, e.value
    assert problem in e.value.problem, e.value
    rec, why = safe_read(reader, rid)
    assert rec is None and problem in why
    return e.value


def test_malformed_header(ptbxl_root: Path):
    (ptbxl_root / HR / "00001_hr.hea").write_text("this is not a header\nfoo bar\n")
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.hea", "header")


def test_unreadable_non_utf8_header(ptbxl_root: Path):
    (ptbxl_root / HR / "00001_hr.hea").write_bytes(b"\xff\xfe\x00garbage\x81\n")
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.hea", "unreadable header")


def test_missing_header(ptbxl_root: Path):
    (ptbxl_root / HR / "00001_hr.hea").unlink()
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.hea", "header file missing")


def test_missing_signal_file(ptbxl_root: Path):
    (ptbxl_root / HR / "00001_hr.dat").unlink()
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.dat", "signal file missing")


def test_truncated_dat(ptbxl_root: Path):
    p = ptbxl_root / HR / "00001_hr.dat"
    p.write_bytes(p.read_bytes()[:1000])
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.dat", "truncated")


def test_truncated_mat(cpsc_root: Path):
    p = cpsc_root / "Training_WFDB" / "A0001.mat"
    p.write_bytes(p.read_bytes()[:500])
    _raises(get_reader("cpsc2018", cpsc_root), "A0001", "A0001.mat", ".mat")


def test_missing_mat(cpsc_root: Path):
    (cpsc_root / "Training_WFDB" / "A0001.mat").unlink()
    _raises(get_reader("cpsc2018", cpsc_root), "A0001", "A0001.mat", "signal file missing")


def test_nan_samples_dat(ptbxl_root: Path):
    sig = lead_signal(1000, seed=1)
    sig[3, 10:20] = np.nan  # written as the WFDB missing-sample value, read back as NaN
    write_wfdb(ptbxl_root / HR, "00001_hr", sig, 500, PTBXL_NAMES)
    err = _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr", "NaN/Inf")
    assert "AVR" in err.problem or "aVR" in err.problem


def test_nan_samples_mat(cpsc_root: Path):
    sig = lead_signal(500)
    write_challenge(cpsc_root / "Training_WFDB", "A0001", sig, dx="426783006")
    import scipy.io

    val = np.round(sig * 1000).astype(np.int16)
    val[0, 5] = -32768
    scipy.io.savemat(cpsc_root / "Training_WFDB" / "A0001.mat", {"val": val}, format="4")
    _raises(get_reader("cpsc2018", cpsc_root), "A0001", "A0001", "NaN/Inf")


def test_inf_samples_original_cpsc(cpsc_original_root: Path):
    import scipy.io

    data = lead_signal(600)
    data[2, 7] = np.inf
    scipy.io.savemat(
        cpsc_original_root / "TrainingSet1" / "A0001.mat", {"ECG": {"sex": "Male", "age": 3, "data": data}}
    )
    _raises(get_reader("cpsc2018_original", cpsc_original_root), "A0001", "A0001.mat", "NaN/Inf")


def test_check_signal_inf_and_flat():
    sig = lead_signal(50)
    sig[1, 0] = -np.inf
    with pytest.raises(RecordError, match=r"NaN/Inf.*\['II'\]"):
        check_signal(sig, "x")
    sig = lead_signal(50)
    sig[11] = 0.0
    with pytest.raises(RecordError, match=r"flat.*\['V6'\]"):
        check_signal(sig, "x")
    assert check_signal(sig, "x", allow_flat=True).dtype == np.float32


def test_flat_lead(ptbxl_root: Path):
    sig = lead_signal(1000, seed=1)
    sig[7] = 0.25
    write_wfdb(ptbxl_root / HR, "00001_hr", sig, 500, PTBXL_NAMES)
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr", "flat")
    assert get_reader("ptbxl", ptbxl_root, allow_flat=True).read("1").signal.shape == (12, 1000)


def test_wrong_lead_count(ptbxl_root: Path):
    write_wfdb(ptbxl_root / HR, "00001_hr", lead_signal(1000)[:8], 500, PTBXL_NAMES[:8])
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.hea", "expected 12 leads")


def test_wrong_lead_count_original_cpsc(cpsc_original_root: Path):
    import scipy.io

    scipy.io.savemat(
        cpsc_original_root / "TrainingSet1" / "A0001.mat", {"ECG": {"sex": "M", "age": 3, "data": lead_signal(600)[:6]}}
    )
    _raises(get_reader("cpsc2018_original", cpsc_original_root), "A0001", "A0001.mat", "expected 12 leads")


def test_unknown_lead_names(cpsc_root: Path):
    names = LEADS[:11] + ["V7"]
    write_challenge(cpsc_root / "Training_WFDB", "A0001", lead_signal(500), names=names)
    _raises(get_reader("cpsc2018", cpsc_root), "A0001", "A0001.hea", "unknown lead name")


def test_unexpected_sampling_rate(ptbxl_root: Path):
    write_wfdb(ptbxl_root / HR, "00001_hr", lead_signal(500), 250, PTBXL_NAMES)
    _raises(get_reader("ptbxl", ptbxl_root), "1", "00001_hr.hea", "unexpected sampling rate 250")
    write_challenge(ptbxl_root / "c", "A0001", lead_signal(500), fs=1000)
    _raises(get_reader("cpsc2018", ptbxl_root / "c"), "A0001", "A0001.hea", "unexpected sampling rate 1000")


def test_empty_report(mimic_root: Path, ptbxl_root: Path):
    _raises(get_reader("mimic_iv_ecg", mimic_root), "40000001", "40000001.hea", "empty report")
    assert get_reader("mimic_iv_ecg", mimic_root, require_report=False).read("40000001").report is None
    # PTB-XL: reports are optional for classification; required on request
    assert get_reader("ptbxl", ptbxl_root).read("13").report is None
    _raises(get_reader("ptbxl", ptbxl_root, require_report=True), "13", "00013_hr.hea", "empty report")


def test_non_utf8_report(ptbxl_root: Path, mimic_root: Path):
    csv = ptbxl_root / "ptbxl_database.csv"
    csv.write_bytes(csv.read_bytes().replace(b"linksherzhypertrophie", "links\xfcberlast".encode("latin-1")))
    r = get_reader("ptbxl", ptbxl_root)
    assert r.metadata().loc["3", "report_problem"] == "report is not valid UTF-8"
    _raises(r, "3", "00003_hr.hea", "not valid UTF-8")
    assert r.read("1").report  # other records unaffected
    mm = mimic_root / "machine_measurements.csv"
    mm.write_bytes(mm.read_bytes().replace(b"Normal ECG", "Normal ECG \xe9".encode("latin-1")))
    _raises(get_reader("mimic_iv_ecg", mimic_root), "45090959", "45090959.hea", "not valid UTF-8")


@pytest.mark.parametrize(
    "dataset, fixture, csv, column",
    [
        ("ptbxl", "ptbxl_root", "ptbxl_database.csv", "strat_fold"),
        ("ptbxl", "ptbxl_root", "ptbxl_database.csv", "scp_codes"),
        ("mimic_iv_ecg", "mimic_root", "record_list.csv", "path"),
        ("mimic_iv_ecg", "mimic_root", "machine_measurements.csv", "report_0"),
        ("cpsc2018_original", "cpsc_original_root", "REFERENCE.csv", "First_label"),
        ("csn", "csn_root", "ConditionNames_SNOMED-CT.csv", "Snomed_CT"),
    ],
)
def test_missing_metadata_columns(request, dataset, fixture, csv, column):
    root = request.getfixturevalue(fixture)
    path = root / csv
    pd.read_csv(path).drop(columns=[column]).to_csv(path, index=False)
    with pytest.raises(RecordError, match="missing metadata column") as e:
        get_reader(dataset, root)  # checked at construction (header row only)
    assert e.value.path.endswith(csv)


def test_ptbxl_statements_missing_column(ptbxl_root: Path):
    path = ptbxl_root / "scp_statements.csv"
    pd.read_csv(path, index_col=0).drop(columns=["diagnostic_class"]).to_csv(path)
    with pytest.raises(RecordError, match="diagnostic_class"):
        get_reader("ptbxl", ptbxl_root)


def test_malformed_metadata_values(ptbxl_root: Path, cpsc_original_root: Path):
    csv = ptbxl_root / "ptbxl_database.csv"
    df = pd.read_csv(csv)
    df.loc[0, "scp_codes"] = "{'NORM': 100.0"  # truncated dict literal
    df.to_csv(csv, index=False)
    with pytest.raises(RecordError, match="ecg_id 1: scp_codes"):
        get_reader("ptbxl", ptbxl_root).metadata()
    ref = cpsc_original_root / "REFERENCE.csv"
    ref.write_text("Recording,First_label,Second_label,Third_label\nA0001,12,,\n")
    with pytest.raises(RecordError, match="not a CPSC class number"):
        get_reader("cpsc2018_original", cpsc_original_root).metadata()


def test_unparseable_metadata_file(ptbxl_root: Path):
    (ptbxl_root / "ptbxl_database.csv").write_text("")
    with pytest.raises(RecordError, match="malformed metadata file"):
        get_reader("ptbxl", ptbxl_root)


def test_challenge_scan_counts_unindexable_headers(cpsc_root: Path, caplog):
    d = cpsc_root / "Training_WFDB"
    write_challenge(d, "A0002", lead_signal(500), dx=None)  # no '# Dx:' line
    (d / "A0003.hea").write_bytes(b"A0003 12 500 500\n# Dx: \xff\xfe\n")
    r = get_reader("cpsc2018", cpsc_root)
    md = r.metadata()
    assert "A0002" not in md.index and "A0003" not in md.index and len(md) == 48
    assert set(r.skipped) == {"A0002", "A0003"} and "no '# Dx:'" in r.skipped["A0002"]
    assert "not indexing A0002" in caplog.text


def test_unknown_record_id(ptbxl_root: Path):
    with pytest.raises(RecordError, match="unknown ptbxl record id '999'"):
        get_reader("ptbxl", ptbxl_root).read("999")


def test_units_converted_or_rejected(tmp_path: Path):
    sig = lead_signal(200)
    write_challenge(tmp_path / "c", "A0001", sig)
    hea = tmp_path / "c" / "A0001.hea"
    hea.write_text(hea.read_text().replace("/mV", "/uV"))  # same ADC numbers, now microvolts
    rec = get_reader("cpsc2018", tmp_path / "c").read("A0001")
    np.testing.assert_allclose(rec.signal, sig / 1000.0, atol=1e-7)
    hea.write_text(hea.read_text().replace("/uV", "/mmHg"))
    with pytest.raises(RecordError, match="unknown signal unit 'mmHg'"):
        get_reader("cpsc2018", tmp_path / "c").read("A0001")
