"""Missing report text behaves the same under pandas 2 and 3 (issue #10).

pandas 3 stores missing text as ``NaN`` in its ``str`` dtype where pandas 2 kept ``None``; before the
fix an empty PTB-XL or MIMIC report reached the text towers as ``nan``/``"nan"`` and was never caught.
Every spelling of "no value" a CSV or a pandas dtype can produce must give ``report is None`` in the
metadata, a ``RecordError`` on a single read where a report is required, and a counted, reasoned skip
in bulk conversion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dr_fixtures import MIMIC_STUDIES, PTBXL_ROWS, write_mimic, write_ptbxl

from ecg_data.cache import build_cache
from ecg_data.readers import get_reader
from ecg_data.readers.base import clean_text, is_missing, object_series, report_problem
from ecg_data.record import RecordError

#: Raw CSV cell texts that mean "no report" (pandas' default NA spellings, blank, white space).
CSV_SPELLINGS = ["", "NaN", "nan", "None", "NA", "<NA>", "null", "   ", "\t \t"]


@pytest.mark.parametrize("value", [None, np.nan, float("nan"), pd.NA, pd.NaT, np.float32("nan")])
def test_is_missing_for_every_pandas_missing_scalar(value) -> None:
    assert is_missing(value)
    assert clean_text(value) is None
    assert report_problem(value) == (None, None)


@pytest.mark.parametrize("value", ["", " ", "nan", "NaN", "None", "<NA>", "NA", "n/a", "NULL"])
def test_blank_and_na_spellings_are_no_text(value: str) -> None:
    assert clean_text(value) is None
    assert report_problem(value) == (None, None)


@pytest.mark.parametrize("value", ["sinus rhythm", 0, 0.0, "0", [], ["a"], {"NORM": 100.0}])
def test_real_values_are_not_missing(value) -> None:
    assert not is_missing(value)


def test_object_series_keeps_none_under_string_inference() -> None:
    idx = pd.Index(["a", "b", "c"])
    s = object_series(["x", None, np.nan], idx)
    assert s.dtype == object
    assert s["a"] == "x" and s["b"] is None and s["c"] is None
    df = pd.DataFrame(index=idx)
    df["r"] = s
    assert df.loc["b", "r"] is None and df.loc["c", "r"] is None  # survives assignment into a frame


def _ptbxl_with_report(root: Path, spelling: str) -> Path:
    """The PTB-XL fixture with record 13's report cell written literally as ``spelling``."""
    write_ptbxl(root)
    csv = root / "ptbxl_database.csv"
    df = pd.read_csv(csv, keep_default_na=False, dtype=str)
    df.loc[df["ecg_id"] == "13", "report"] = spelling
    df.to_csv(csv, index=False)
    return root


@pytest.mark.parametrize("spelling", CSV_SPELLINGS)
def test_ptbxl_missing_report_spellings(tmp_path: Path, spelling: str) -> None:
    root = _ptbxl_with_report(tmp_path / "ptbxl", spelling)
    md = get_reader("ptbxl", root).metadata()
    assert md.loc["13", "report"] is None, repr(md.loc["13", "report"])
    assert md["report"].dtype == object
    # every present report is a real str, never NaN
    others = md["report"].drop("13")
    assert all(isinstance(r, str) and r for r in others)
    assert get_reader("ptbxl", root).read("13").report is None
    with pytest.raises(RecordError) as e:
        get_reader("ptbxl", root, require_report=True).read("13")
    assert "empty report" in e.value.problem and "00013_hr.hea" in e.value.path


def test_ptbxl_patient_id_missing_is_none(tmp_path: Path) -> None:
    root = write_ptbxl(tmp_path / "ptbxl")
    csv = root / "ptbxl_database.csv"
    df = pd.read_csv(csv)
    df.loc[df["ecg_id"] == 13, "patient_id"] = np.nan
    df.to_csv(csv, index=False)
    md = get_reader("ptbxl", root).metadata()
    assert md.loc["13", "patient_id"] is None and md.loc["1", "patient_id"] == "101"


@pytest.mark.parametrize("spelling", CSV_SPELLINGS)
def test_mimic_missing_report_spellings(tmp_path: Path, spelling: str) -> None:
    studies = [s for s in MIMIC_STUDIES if s[1] != "40000001"] + [("10000118", "40000001", [spelling, spelling])]
    root = write_mimic(tmp_path / "mimic", studies)
    mm = root / "machine_measurements.csv"
    df = pd.read_csv(mm, keep_default_na=False, dtype=str)
    df.loc[df["study_id"] == "40000001", ["report_0", "report_1"]] = spelling  # exact text, as a CSV holds it
    df.to_csv(mm, index=False)
    reader = get_reader("mimic_iv_ecg", root)
    md = reader.metadata()
    assert md.loc["40000001", "report"] is None, repr(md.loc["40000001", "report"])
    assert md.loc["45090959", "report"] == "Suspect arm lead reversal. Normal ECG."
    with pytest.raises(RecordError) as e:
        reader.read("40000001")
    assert "empty report" in e.value.problem


def test_bulk_conversion_counts_the_empty_report_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECG_CACHE", str(tmp_path / "cache"))
    root = _ptbxl_with_report(tmp_path / "ptbxl", "NaN")
    reader = get_reader("ptbxl", root, require_report=True)
    ids = reader.record_ids()
    split = build_cache(reader, ids, "raw500", workers=1, progress=False, out_dir=tmp_path / "out")
    assert "13" not in split.record_ids and len(split) == len(PTBXL_ROWS) - 1
    qc = split.qc.set_index("record_id")
    assert "empty report" in qc.loc["13", "reason"]
    assert split.meta["summary"]["skipped"] == 1
    assert any("empty report" in k for k in split.meta["summary"]["skipped_by_reason"])
    # the cached index never holds NaN text either
    assert all(isinstance(r, str) for r in split.index["report"])
