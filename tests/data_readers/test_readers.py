"""Every reader on small fixtures written in the real formats."""

from pathlib import Path

import numpy as np
import pytest
from dr_fixtures import MIMIC_NAMES, PTBXL_ROWS, lead_signal

from ecg_data.readers import READERS, get_reader, iter_records, safe_read
from ecg_data.readers.mimic_iv_ecg import clean_report
from ecg_data.record import LEADS, DatasetNotFoundError


def test_registry_names():
    assert READERS.names() == sorted(
        ["ptbxl", "cpsc2018", "cpsc2018_original", "csn", "mimic_iv_ecg", "g12ec", "code15", "code_test"]
    )
    for name in READERS.names():
        cls = READERS.get(name)
        doc = cls.__module__ and __import__(cls.__module__, fromlist=["x"]).__doc__
        for section in ("Source", "Version", "License", "Citation", "Known quirks"):
            assert section in doc, f"{name} dataset card lacks {section}"
        assert cls.expected_layout and cls.published_at.startswith("http")


@pytest.mark.parametrize("fs", [100, 500])
def test_ptbxl_fixture(ptbxl_root: Path, fs: int):
    r = get_reader("ptbxl", ptbxl_root, fs=fs)
    md = r.metadata()
    assert md.index.tolist() == [str(i) for i in sorted(PTBXL_ROWS)]
    assert md.loc["2", "scp_codes"] == {"IMI": 35.0, "ABQRS": 0.0, "SR": 0.0}
    assert md.loc["2", "patient_id"] == "102" and md.loc["2", "strat_fold"] == 2
    assert md.loc["13", "report"] is None  # empty report -> None
    assert md.loc["7", "report"] == "infarkt, t-veränderungen"  # UTF-8 umlaut kept
    assert md.loc["1", "path"].startswith(f"records{fs}/")
    rec = r.read("3")
    sig = lead_signal(1000, seed=3)
    expected = sig if fs == 500 else sig[:, ::5]
    assert rec.fs == fs and rec.signal.shape == (12, fs * 2) and rec.signal.dtype == np.float32
    np.testing.assert_allclose(rec.signal, expected, atol=1e-6)
    assert rec.patient_id == "103" and rec.report == "linksherzhypertrophie" and rec.codes == ["LVH", "SR"]


def test_ptbxl_fingerprint_depends_on_fs_and_content(ptbxl_root: Path):
    a = get_reader("ptbxl", ptbxl_root, fs=500).fingerprint()
    assert a == get_reader("ptbxl", ptbxl_root, fs=500).fingerprint()
    assert a != get_reader("ptbxl", ptbxl_root, fs=100).fingerprint()
    csv = ptbxl_root / "ptbxl_database.csv"
    csv.write_text(csv.read_text().replace("linksherzhypertrophie", "lvh"))
    assert a != get_reader("ptbxl", ptbxl_root, fs=500).fingerprint()


def test_mimic_fixture_maps_avf_avl_by_name(mimic_root: Path):
    r = get_reader("mimic_iv_ecg", mimic_root)
    md = r.metadata()
    assert md.loc["40689238", "patient_id"] == "10000032"
    rec = r.read("40689238")
    raw = lead_signal(1000, seed=40689238 % 1000)  # rows in MIMIC order
    np.testing.assert_allclose(rec.signal[LEADS.index("aVL")], raw[MIMIC_NAMES.index("aVL")], atol=1e-6)
    np.testing.assert_allclose(rec.signal[LEADS.index("aVF")], raw[MIMIC_NAMES.index("aVF")], atol=1e-6)
    assert rec.report == "Sinus rhythm. Possible left atrial enlargement. Borderline ECG."


def test_mimic_report_cleaning_rules(mimic_root: Path):
    md = get_reader("mimic_iv_ecg", mimic_root, min_report_words=0).metadata()
    # boilerplate dropped, period added, case-insensitive duplicate dropped keeping the first
    assert md.loc["44458630", "report"] == "Sinus tachycardia."
    # the original pipelines' default: reports under 4 words are dropped (MELP preprocess_mimic_iv_ecg.py:116-117)
    assert get_reader("mimic_iv_ecg", mimic_root).metadata().loc["44458630", "report"] is None
    # markers stripped, text kept
    assert md.loc["45090959", "report"] == "Suspect arm lead reversal. Normal ECG."
    assert md.loc["40000001", "report"] is None
    kept = get_reader("mimic_iv_ecg", mimic_root, drop_boilerplate=False).metadata()
    assert kept.loc["44458630", "report"].startswith("Pediatric criteria used.")
    assert clean_report([float("nan"), "  a   b ", "Why?"]) == "a b. Why?"


def test_mimic_original_cleaning_rules_are_options_in_the_fingerprint(mimic_root: Path):
    """EKG -> ECG and the 4-word floor (MELP preprocess_mimic_iv_ecg.py:30,116-117) change the cache key."""
    assert clean_report(["Abnormal EKG", "see ekg"], ekg_to_ecg=True) == "Abnormal ECG. see ecg."
    assert clean_report(["Abnormal EKG"], ekg_to_ecg=False) == "Abnormal EKG."
    assert clean_report(["Sinus rhythm", "Normal ECG"], min_words=4) == "Sinus rhythm. Normal ECG."
    assert clean_report(["Sinus rhythm"], min_words=4) is None
    fps = {
        get_reader("mimic_iv_ecg", mimic_root, **kw).fingerprint_extra()
        for kw in ({}, {"min_report_words": 0}, {"ekg_to_ecg": False}, {"min_report_words": 0, "ekg_to_ecg": False})
    }
    assert len(fps) == 4


def test_mimic_demographics_from_the_hosp_patients_table(mimic_root: Path, caplog):
    """Age (anchor_age) and sex per record from MIMIC-IV's patients table beside the files (ESI's captions);
    a subject missing from it, or with another gender code, is counted and logged; no table = no columns."""
    import pandas as pd

    plain = get_reader("mimic_iv_ecg", mimic_root)
    assert "age" not in plain.metadata().columns and "age" not in plain.read("40689238").meta
    before = plain.fingerprint()
    pd.DataFrame(
        {
            "subject_id": ["10000032", "10000117"],
            "gender": ["F", "X"],
            "anchor_age": [52, 61],
            "anchor_year": [2180, 2170],
        }
    ).to_csv(mimic_root / "patients.csv", index=False)
    r = get_reader("mimic_iv_ecg", mimic_root)
    md = r.metadata()
    assert md.loc["40689238", "age"] == 52 and md.loc["44458630", "sex"] == "F"  # both studies of subject ...032
    assert md.loc["45090959", "age"] is None and md.loc["40000001", "sex"] is None  # gender "X"; subject absent
    assert r.demographics_missing == 2 and "have no age/sex" in caplog.text
    assert r.read("40689238").meta["age"] == 52
    assert r.fingerprint() != before  # the captions a method builds from them change: caches and splits re-key
    assert get_reader("mimic_iv_ecg", mimic_root, demographics=None).fingerprint() == before
    with pytest.raises(DatasetNotFoundError, match="nowhere.csv"):
        get_reader("mimic_iv_ecg", mimic_root, demographics=mimic_root / "nowhere.csv").metadata()


def test_cpsc_challenge_fixture(cpsc_root: Path):
    r = get_reader("cpsc2018", cpsc_root)
    md = r.metadata()
    assert len(md) == 50 and md.loc["A0001", "cpsc_classes"] == ["NORM", "PVC"]
    assert md.loc["A0004", "cpsc_classes"] == ["RBBB"]  # 713427006 (complete RBBB) counts as RBBB
    rec = r.read("A0002")
    np.testing.assert_allclose(rec.signal, lead_signal(500, seed=1), atol=1e-6)
    assert rec.meta["age"] == 50 and rec.meta["sex"] == "M" and rec.codes == ["164889003"]


def test_cpsc_original_fixture(cpsc_original_root: Path):
    r = get_reader("cpsc2018_original", cpsc_original_root)
    md = r.metadata()
    assert md.index.tolist() == ["A0001", "A0002", "A0003"]
    assert md.loc["A0002", "cpsc_classes"] == ["AF", "PVC"]
    assert md.loc["A0003", "cpsc_classes"] == ["RBBB", "STD", "STE"]
    assert md.loc["A0003", "codes"] == ["59118001", "429622005", "164931005"]
    rec = r.read("A0002")
    np.testing.assert_allclose(rec.signal, lead_signal(600, seed=1), atol=1e-6)
    assert rec.meta["sex"] == "M" and rec.meta["age"] == 41


def test_csn_fixture(csn_root: Path):
    r = get_reader("csn", csn_root)
    md = r.metadata()
    assert len(md) == 40 and md.loc["JS00001", "path"] == "WFDBRecords/01/010/JS00001"
    assert md.loc["JS00001", "codes"][0] == "426177001"
    names = r.class_names()
    assert names["426177001"] == "SB" and names["164934002"] == "TWC"
    rec = r.read("JS00002")
    np.testing.assert_allclose(rec.signal, lead_signal(500, seed=1), atol=1e-6)


def test_csn_exact_codes_never_substrings(tmp_path: Path):
    from dr_fixtures import write_challenge, write_conditions

    root = tmp_path / "csn"
    # 4267830060 contains 426783006 (SR) as a substring; it must not count as SR.
    write_challenge(root / "WFDBRecords/01/010", "JS00001", lead_signal(100), dx="4267830060")
    write_challenge(root / "WFDBRecords/01/010", "JS00002", lead_signal(100, 1), dx="426783006")
    write_conditions(root)
    r = get_reader("csn", root)
    names = r.class_names()
    assert names["4267830060"] == "SNOMED_4267830060" and names["426783006"] == "SR"


def test_not_found_errors_name_layout_and_source(tmp_path: Path):
    for name in READERS.names():
        with pytest.raises(DatasetNotFoundError) as e:
            get_reader(name, tmp_path / "nope")
        msg = str(e.value)
        assert "Expected layout" in msg and "http" in msg, msg
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptbxl_database.csv").write_text("ecg_id\n")
    with pytest.raises(DatasetNotFoundError, match="scp_statements.csv"):
        get_reader("ptbxl", tmp_path / "ptb")


def test_safe_read_and_iter_records(ptbxl_root: Path):
    r = get_reader("ptbxl", ptbxl_root)
    (ptbxl_root / "records500/00000/00002_hr.dat").unlink()
    rec, why = safe_read(r, "1")
    assert rec is not None and why is None
    out = list(iter_records(r, ["1", "2", "3"]))
    assert [(rid, rec is None) for rid, rec, _ in out] == [("1", False), ("2", True), ("3", False)]
    assert "00002_hr.dat" in out[1][2] and "signal file missing" in out[1][2]


def test_unknown_options_rejected(ptbxl_root: Path):
    with pytest.raises(TypeError):
        get_reader("ptbxl", ptbxl_root, nonsense=1)
    with pytest.raises(ValueError):
        get_reader("ptbxl", ptbxl_root, fs=250)
