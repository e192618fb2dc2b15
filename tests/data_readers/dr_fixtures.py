"""Writers of small fixtures in the real on-disk formats (wfdb.wrsamp, scipy.io.savemat, CSV)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MIMIC_NAMES = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]  # aVF before aVL


def lead_signal(t: int, seed: int = 0) -> np.ndarray:
    """(12, T) mV where lead i has offset i * 0.1 mV plus noise, so a lead swap is detectable."""
    rng = np.random.default_rng(seed)
    sig = rng.normal(0, 0.05, (12, t)) + np.arange(12)[:, None] * 0.1
    return np.round(sig, 3)  # exact at gain 1000


def write_wfdb(directory: Path, name: str, signal: np.ndarray, fs: int, names: list[str], comments=None) -> Path:
    """signal (n_leads, T) mV -> ``<directory>/<name>.{hea,dat}`` (format 16, gain 1000)."""
    import wfdb

    directory.mkdir(parents=True, exist_ok=True)
    n = signal.shape[0]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * n,
        sig_name=list(names),
        p_signal=signal.T.astype(np.float64),
        fmt=["16"] * n,
        adc_gain=[1000.0] * n,
        baseline=[0] * n,
        write_dir=str(directory),
        comments=comments or [],
    )
    return directory / name


def write_challenge(
    directory: Path,
    name: str,
    signal: np.ndarray,
    *,
    fs: int = 500,
    names=None,
    dx: str | None = "426783006",
    age="50",
    sex="Male",
) -> Path:
    """Challenge layout exactly as the CinC 2020/2021 files: MATLAB v4 'val' int16 + hand-written header."""
    directory.mkdir(parents=True, exist_ok=True)
    names = names or LEADS
    val = np.round(signal * 1000).astype(np.int16)
    scipy.io.savemat(directory / f"{name}.mat", {"val": val}, format="4")
    lines = [f"{name} {val.shape[0]} {fs} {val.shape[1]}"]
    for i, lead in enumerate(names):
        checksum = int(np.sum(val[i].astype(np.int64))) % 65536
        checksum = checksum - 65536 if checksum >= 32768 else checksum
        lines.append(f"{name}.mat 16x1+24 1000.0(0)/mV 16 0 {int(val[i, 0])} {checksum} 0 {lead}")
    lines += [f"# Age: {age}", f"# Sex: {sex}"]
    if dx is not None:
        lines.append(f"# Dx: {dx}")
    lines += ["# Rx: Unknown", "# Hx: Unknown", "# Sx: Unknown"]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return directory / name


# -- PTB-XL --------------------------------------------------------------------------------------------
#: A small authored statement table with the real columns (values as in scp_statements.csv).
SCP_ROWS = [
    # code, description, diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass
    ("NORM", "normal ECG", 1.0, None, None, "NORM", "NORM"),
    ("IMI", "inferior myocardial infarction", 1.0, None, None, "MI", "IMI"),
    ("LVH", "left ventricular hypertrophy", 1.0, None, None, "HYP", "LVH"),
    ("NDT", "non-diagnostic T abnormalities", 1.0, 1.0, None, "STTC", "STTC"),
    ("CLBBB", "complete left bundle branch block", 1.0, None, None, "CD", "CLBBB"),
    ("ABQRS", "abnormal QRS", None, 1.0, None, None, None),
    ("SR", "sinus rhythm", None, None, 1.0, None, None),
    ("AFIB", "atrial fibrillation", None, None, 1.0, None, None),
]

#: ecg_id -> (patient_id, strat_fold, scp_codes, report); two patients with two ECGs each, in one fold.
PTBXL_ROWS = {
    1: (101.0, 1, {"NORM": 100.0, "SR": 0.0}, "sinusrhythmus normales ekg"),
    2: (102.0, 2, {"IMI": 35.0, "ABQRS": 0.0, "SR": 0.0}, "sinusrhythmus inferiorer infarkt"),
    3: (103.0, 3, {"LVH": 100.0, "SR": 0.0}, "linksherzhypertrophie"),
    4: (104.0, 4, {"NDT": 100.0, "AFIB": 0.0}, "vorhofflimmern"),
    5: (105.0, 5, {"CLBBB": 100.0, "SR": 0.0}, "linksschenkelblock"),
    6: (106.0, 6, {"NORM": 80.0, "SR": 0.0}, "normales ekg"),
    7: (107.0, 7, {"IMI": 50.0, "NDT": 100.0, "SR": 0.0}, "infarkt, t-veränderungen"),
    8: (101.0, 1, {"NORM": 100.0, "SR": 0.0}, "sinusrhythmus normales ekg"),
    9: (109.0, 9, {"NORM": 100.0, "LVH": 50.0, "SR": 0.0}, "normal"),
    10: (110.0, 9, {"IMI": 100.0, "NDT": 100.0, "CLBBB": 100.0, "AFIB": 0.0}, "infarkt"),
    11: (111.0, 10, {"NORM": 100.0, "LVH": 100.0, "SR": 0.0}, "normal"),
    12: (112.0, 10, {"IMI": 100.0, "NDT": 50.0, "CLBBB": 100.0, "AFIB": 0.0}, "infarkt"),
    13: (113.0, 8, {"AFIB": 0.0}, ""),  # rhythm only: not in the diagnostic tasks; empty report
    14: (110.0, 9, {"NORM": 100.0}, "zweites ekg"),
}


def write_ptbxl(root: Path, rows=PTBXL_ROWS, *, t_seconds: float = 2.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for ecg_id, (pid, fold, codes, report) in rows.items():
        lr = f"records100/00000/{ecg_id:05d}_lr"
        hr = f"records500/00000/{ecg_id:05d}_hr"
        sig = lead_signal(int(500 * t_seconds), seed=ecg_id)
        write_wfdb(root / "records500/00000", f"{ecg_id:05d}_hr", sig, 500, PTBXL_NAMES)
        write_wfdb(root / "records100/00000", f"{ecg_id:05d}_lr", sig[:, ::5], 100, PTBXL_NAMES)
        recs.append(
            {
                "ecg_id": ecg_id,
                "patient_id": pid,
                "age": 60.0,
                "sex": ecg_id % 2,
                "report": report,
                "scp_codes": repr(codes),
                "strat_fold": fold,
                "filename_lr": lr,
                "filename_hr": hr,
            }
        )
    pd.DataFrame(recs).to_csv(root / "ptbxl_database.csv", index=False)
    st = pd.DataFrame(
        SCP_ROWS,
        columns=["code", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"],
    ).set_index("code")
    st.index.name = None
    st.to_csv(root / "scp_statements.csv")
    return root


# -- MIMIC-IV-ECG --------------------------------------------------------------------------------------
MIMIC_STUDIES = [
    # subject, study, report parts
    ("10000032", "40689238", ["Sinus rhythm", "  Possible  left atrial enlargement ", None, "Borderline ECG"]),
    ("10000032", "44458630", ["--- Pediatric criteria used ---", "Sinus tachycardia.", "sinus tachycardia."]),
    ("10000117", "45090959", ["*** Suspect arm lead reversal ***", "Normal ECG"]),
    ("10000118", "40000001", [None, None]),  # empty report
]


def write_mimic(root: Path, studies=MIMIC_STUDIES) -> Path:
    rl, mm = [], []
    for subject, study, parts in studies:
        rel = f"files/p{subject[:4]}/p{subject}/s{study}/{study}"
        write_wfdb(root / Path(rel).parent, study, lead_signal(1000, seed=int(study) % 1000), 500, MIMIC_NAMES)
        rl.append(
            {
                "subject_id": subject,
                "study_id": study,
                "file_name": study,
                "ecg_time": "2180-07-23 08:44:00",
                "path": rel,
            }
        )
        row = {"subject_id": subject, "study_id": study, "cart_id": 1, "ecg_time": "2180-07-23 08:44:00"}
        row.update({f"report_{k}": (parts[k] if k < len(parts) else None) for k in range(18)})
        mm.append(row)
    # MIMIC stores the signal rows as named in MIMIC_NAMES: lead_signal's row i is named MIMIC_NAMES[i].
    pd.DataFrame(rl).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(mm).to_csv(root / "machine_measurements.csv", index=False)
    return root


# -- CSN / CPSC ----------------------------------------------------------------------------------------
CONDITIONS = [
    ("SB", "Sinus Bradycardia", "426177001"),
    ("SR", "Sinus Rhythm", "426783006"),
    ("AFIB", "Atrial Fibrillation", "164889003"),
    ("TWC", "T wave Change", "164934002"),
    ("RARE", "A rare finding", "55930002"),
]


def write_conditions(root: Path) -> None:
    pd.DataFrame(CONDITIONS, columns=["Acronym Name", "Full Name", "Snomed_CT"]).to_csv(
        root / "ConditionNames_SNOMED-CT.csv", index=False
    )


def write_csn(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        base = ["426177001", "426783006", "164889003"][i % 3]
        codes = [base] + (["164934002"] if rng.random() < 0.4 else []) + (["55930002"] if i == 0 else [])
        rid = f"JS{i + 1:05d}"
        write_challenge(root / "WFDBRecords" / "01" / "010", rid, lead_signal(500, seed=i), dx=",".join(codes))
    write_conditions(root)
    return root


#: CPSC class -> Challenge SNOMED code used in fixtures
CPSC_CODE = {"NORM": "426783006", "AF": "164889003", "I-AVB": "270492004", "RBBB": "713427006", "PVC": "164884008"}


def write_cpsc_challenge(root: Path, n: int = 50) -> Path:
    classes = list(CPSC_CODE)
    for i in range(n):
        cl = [classes[i % len(classes)]] + (["PVC"] if i % 7 == 0 else [])
        write_challenge(
            root / "Training_WFDB", f"A{i + 1:04d}", lead_signal(500, seed=i), dx=",".join(CPSC_CODE[c] for c in cl)
        )
    return root


def write_cpsc_original(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ref = [("A0001", 1, None, None), ("A0002", 2, 7, None), ("A0003", 5, 8, 9)]
    for i, (rid, *_) in enumerate(ref):
        (root / "TrainingSet1").mkdir(exist_ok=True)
        scipy.io.savemat(
            root / "TrainingSet1" / f"{rid}.mat",
            {"ECG": {"sex": "Male" if i % 2 else "Female", "age": 40 + i, "data": lead_signal(600, seed=i)}},
        )
    pd.DataFrame(ref, columns=["Recording", "First_label", "Second_label", "Third_label"]).to_csv(
        root / "REFERENCE.csv", index=False
    )
    return root


# -- fixtures: each layout is written once per session and copied per test (tests may modify their copy) --
_WRITERS = {
    "ptbxl": write_ptbxl,
    "mimic": write_mimic,
    "csn": write_csn,
    "cpsc": write_cpsc_challenge,
    "cpsc_original": write_cpsc_original,
}


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dr-templates")
    return {k: w(base / k) for k, w in _WRITERS.items()}


def _copy(templates: dict[str, Path], key: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(templates[key], tmp_path / key))


@pytest.fixture
def ptbxl_root(_templates, tmp_path: Path) -> Path:
    return _copy(_templates, "ptbxl", tmp_path)


@pytest.fixture
def mimic_root(_templates, tmp_path: Path) -> Path:
    return _copy(_templates, "mimic", tmp_path)


@pytest.fixture
def csn_root(_templates, tmp_path: Path) -> Path:
    return _copy(_templates, "csn", tmp_path)


@pytest.fixture
def cpsc_root(_templates, tmp_path: Path) -> Path:
    return _copy(_templates, "cpsc", tmp_path)


@pytest.fixture
def cpsc_original_root(_templates, tmp_path: Path) -> Path:
    return _copy(_templates, "cpsc_original", tmp_path)
