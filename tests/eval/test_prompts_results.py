"""Default prompt file coverage, MERL-format prompt files, atomic result writes, file naming."""

import json
import os

import pandas as pd
import pytest

from ecg_eval.prompts import class_prompts, load_prompt_file
from ecg_eval.results import fraction_percent, result_name, write_result

CPSC = ["NORM", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"]
# Acronyms of PhysioNet ecg-arrhythmia 1.0.0 ConditionNames_SNOMED-CT.csv (CSN)
CSN = (
    "1AVB 2AVB 2AVB1 2AVB2 3AVB ABI ALS APB AQW ARS AVB CCR CR ERV FQRS IDC IVB JEB JPT LBBB LBBBB LFBBB LVH "
    "LVQRSAL LVQRSCL LVQRSLL MI MIBW MIFW MILW MISW PRIE PWC QTIE RAH RBBB RVH STDD STE STTC STTU TWC TWO UW VB "
    "VEB VFW VPB VPE VET WAVN WPW SB SR AFIB ST AF SA SVT AT AVNRT AVRT SAAWR"
).split()


def test_default_prompts_cover_every_ptbxl_statement_and_class(ptbxl500) -> None:
    scp = pd.read_csv(ptbxl500 / "scp_statements.csv", index_col=0)
    labels = set(scp.index) | set(scp["diagnostic_class"].dropna()) | set(scp["diagnostic_subclass"].dropna())
    assert len(scp) == 71
    prompts = class_prompts(sorted(labels), dataset="ptbxl")
    assert set(prompts) == labels and all(prompts.values())


def test_default_prompts_cover_cpsc_and_csn() -> None:
    assert set(class_prompts(CPSC, dataset="cpsc2018")) == set(CPSC)
    csn = class_prompts(CSN, dataset="csn")
    assert set(csn) == set(CSN)
    # dataset-qualified entries: CSN's AF is atrial flutter, CPSC's atrial fibrillation
    assert "flutter" in csn["AF"][0] and "fibrillation" in class_prompts(["AF"], dataset="cpsc2018")["AF"][0]


def test_merl_format_string_entries(tmp_path) -> None:
    p = tmp_path / "merl.json"
    p.write_text(json.dumps({"NORM": "normal ECG, Sinus rhythm", "#comment": "ignored"}))
    assert class_prompts(["NORM"], path=p) == {"NORM": ["normal ECG, Sinus rhythm"]}  # whole, as MERL embeds it
    assert class_prompts(["NORM"], path=p, split_commas=True, lowercase=True) == {
        "NORM": ["normal ecg", "sinus rhythm"]
    }
    assert class_prompts(["NORM"], path=p, templates=["ECG showing {}"]) == {
        "NORM": ["ECG showing normal ECG, Sinus rhythm"]
    }
    p2 = tmp_path / "merl2.json"
    p2.write_text(json.dumps({"NST": "non-specific ST changes"}))
    assert class_prompts(["NST_"], path=p2) == {"NST_": ["non-specific ST changes"]}  # MERL writes NST for NST_
    table, _ = load_prompt_file(p)
    assert "#comment" not in table


def test_result_names() -> None:
    assert result_name("linear_probe", 0.01, 0) == "linear_probe-1-seed0.json"
    assert result_name("linear_probe", 0.1, 2) == "linear_probe-10-seed2.json"
    assert result_name("linear_probe", 1.0, 1) == "linear_probe-100-seed1.json"
    assert result_name("zero_shot", None, 0) == "zero_shot-seed0.json"
    assert fraction_percent(0.005) == "0.5"
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fraction_percent(10)


def _minimal(**kw) -> dict:
    r = {
        "schema_version": 1,
        "status": "ok",
        "method": "m",
        "checkpoint_hash": "h",
        "task": "t",
        "suite": "real",
        "mode": "zero_shot",
        "fraction": None,
        "seed": 0,
        "scores": {"macro_auroc": 0.7, "per_class_auroc": {}},
    }
    r.update(kw)
    return r


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.json"
    write_result(path, _minimal())
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_result(path, _minimal(seed=1))
    assert path.read_text() == before  # the old result is intact
    # and no temp file is left behind (r.json.sha256: its checksum record, ecg_data.integrity)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.sha256"]


def test_invalid_result_is_not_written(tmp_path) -> None:
    with pytest.raises(ValueError, match="scores.macro_auroc"):
        write_result(tmp_path / "bad.json", _minimal(scores={}))
    assert not (tmp_path / "bad.json").exists()
