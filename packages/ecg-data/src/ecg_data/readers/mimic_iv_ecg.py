"""MIMIC-IV-ECG 1.0 reader (the ECG-text pretraining corpus).

Dataset card
------------
- Source: PhysioNet, "MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset",
  https://physionet.org/content/mimic-iv-ecg/1.0/
- Version: 1.0 (~800,000 10 s 12-lead ECGs at 500 Hz of ~160,000 patients, with machine reports).
- License: Open Data Commons Open Database License v1.0 (ODbL) for 1.0 (check the page; credentialing
  rules may apply to linked MIMIC-IV modules).
- Citation: Gow, B., Pollard, T., Nathanson, L. A., Johnson, A., Moody, B., Fernandes, C., Greenbaum, N.,
  Waks, J. W., Eslami, P., Carbonati, T., Chaudhari, A., Herbst, E., Moukheiber, D., Berkowitz, S.,
  Mark, R., Horng, S. (2023). MIMIC-IV-ECG (version 1.0). PhysioNet. https://doi.org/10.13026/4nqg-sb35
- Layout::

    <root>/record_list.csv             subject_id, study_id, file_name, ecg_time, path
    <root>/machine_measurements.csv    subject_id, study_id, ..., report_0 ... report_17, ...
    <root>/files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.{hea,dat}
    <root>/patients.csv[.gz]           optional: MIMIC-IV hosp ``patients`` (subject_id, gender, anchor_age)

- Demographics (optional): MIMIC-IV-ECG itself has no age or sex; they live in the MIMIC-IV hosp module's
  ``patients`` table (a separate PhysioNet download). Put (or link) it as ``<root>/patients.csv[.gz]``, or pass
  ``demographics=<path>``: the metadata then gains ``age`` (``anchor_age``, years) and ``sex`` (``M``/``F``)
  per record, as ESI's captions use them (comp-well-org/ESI @5c08a9b ``utils/data/process_mimic.py:52-54,74-78``).
  Subjects absent from the table, or with another gender code, get None (counted in ``demographics_missing``).

- Report cleaning (``clean_report``), in this order: take ``report_0`` ... ``report_17`` in numeric
  order; drop missing/NaN cells; strip and collapse whitespace; strip the ``---``/``***`` markers the
  machine wraps around technical notes (the text inside is kept, e.g. "Suspect arm lead reversal");
  drop the boilerplate statements in ``BOILERPLATE`` (they describe the algorithm, not the ECG); drop
  statements that are empty afterwards; end each statement with a period unless it already ends in
  ``.``, ``!`` or ``?``; drop case-insensitive duplicates keeping the first; join with one space.
  Then the two rules of the original pipelines (HKU-MedAI/MELP @088741d
  ``scripts/preprocess/preprocess_mimic_iv_ecg.py:30`` and ``:116-117``; MERL and ESI pretrain on the same
  cleaned reports): ``EKG``/``ekg`` -> ``ECG``/``ecg`` (``ekg_to_ecg=True``) and reports of fewer than 4
  words are dropped (``min_report_words=4``; 0 keeps them). Both are reader options; the defaults follow
  the original and are part of the fingerprint.
  A record whose cleaned report is empty (or dropped as too short) has ``report=None``; ``read`` then raises
  ``RecordError(..., "empty report")`` because this reader requires reports by default.
- Known quirks: the leads are stored in the order I, II, III, aVR, **aVF, aVL**, V1-V6 (mapped by
  header name here; the original codebases swap rows by hand); some records contain NaN samples or
  flat leads (``read`` raises; the cache skips and lists them); ``study_id`` is the record id and
  ``subject_id`` the patient id.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.readers.base import (
    _SURROGATE,
    DatasetReader,
    check_report,
    clean_text,
    object_series,
    read_csv_checked,
    read_wfdb,
)
from ecg_data.record import DatasetNotFoundError, Record

log = logging.getLogger(__name__)

RECORD_COLUMNS = ("subject_id", "study_id", "path")
PATIENT_COLUMNS = ("subject_id", "gender", "anchor_age")  # MIMIC-IV hosp patients.csv
DEMOGRAPHICS_FILES = ("patients.csv", "patients.csv.gz")
MEASUREMENT_COLUMNS = ("study_id", "report_0")
N_REPORT_FIELDS = 18  # report_0 ... report_17 (MIMIC-IV-ECG 1.0 machine_measurements.csv)

#: Lower-case statements (after marker stripping, without final period) dropped as algorithm boilerplate.
BOILERPLATE: frozenset[str] = frozenset({"pediatric criteria used"})
_MARKERS = re.compile(r"^[\s\-*]+|[\s\-*]+$")


#: MELP preprocess_mimic_iv_ecg.py:116-117: "Filter out reports with less than 4 words".
MIN_REPORT_WORDS = 4
_EKG = re.compile(r"EKG|ekg")


def clean_report(
    parts: list[Any], *, drop_boilerplate: bool = True, ekg_to_ecg: bool = False, min_words: int = 0
) -> str | None:
    """Join the machine statements into one report by the rules in the module docstring.

    ``ekg_to_ecg`` and ``min_words`` are the original pipelines' rules (the reader turns them on by default).
    """
    out: list[str] = []
    seen: set[str] = set()
    for p in parts:
        t = clean_text(p)
        if t is None:
            continue
        s = _MARKERS.sub("", t)
        if not s:
            continue
        if drop_boilerplate and s.rstrip(".!?").strip().lower() in BOILERPLATE:
            continue
        if s[-1] not in ".!?":
            s += "."
        key = s.lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(s)
    report = " ".join(out)
    if ekg_to_ecg:
        report = _EKG.sub(lambda m: "ECG" if m.group(0) == "EKG" else "ecg", report)
    if not report or len(report.split()) < min_words:
        return None
    return report


class MIMICIVECGReader(DatasetReader):
    name = "mimic_iv_ecg"
    version = "1.0"
    native_fs = 500
    expected_layout = __doc__.split("- Layout::", 1)[1].split("- Demographics", 1)[0].strip("\n")
    published_at = "https://physionet.org/content/mimic-iv-ecg/1.0/"

    def __init__(
        self,
        root: str | Path,
        *,
        require_report: bool = True,
        drop_boilerplate: bool = True,
        allow_flat: bool = False,
        ekg_to_ecg: bool = True,  # MELP preprocess_mimic_iv_ecg.py:30
        min_report_words: int = MIN_REPORT_WORDS,  # MELP preprocess_mimic_iv_ecg.py:116-117
        demographics: str | Path | None = "auto",
        **kw: Any,
    ) -> None:
        """``demographics``: "auto" = ``<root>/patients.csv[.gz]`` when present; a path (must exist); None = off."""
        self._demographics_opt = demographics
        #: records whose subject has no usable row in the patients table (0 without a table)
        self.demographics_missing = 0
        self.require_report = require_report
        self.drop_boilerplate = drop_boilerplate
        self.ekg_to_ecg, self.min_report_words = bool(ekg_to_ecg), int(min_report_words)
        self.allow_flat = allow_flat
        super().__init__(root, **kw)

    def required_paths(self) -> list[str]:
        return ["record_list.csv", "machine_measurements.csv", "files"]

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {"record_list.csv": RECORD_COLUMNS, "machine_measurements.csv": MEASUREMENT_COLUMNS}

    def fingerprint_extra(self) -> str:
        extra = f"boilerplate={self.drop_boilerplate}:{sorted(BOILERPLATE)}"
        if self.ekg_to_ecg or self.min_report_words:  # the pre-issue-14 cleaning keeps its old fingerprint
            extra += f":ekg_to_ecg={self.ekg_to_ecg}:min_words={self.min_report_words}"
        md = self.metadata()
        if "age" in md.columns:  # only with a patients table: the earlier fingerprints stay as they were
            demo = pd.DataFrame({"age": md["age"].map(str).to_numpy(), "sex": md["sex"].map(str).to_numpy()})
            digest = hashlib.sha256(pd.util.hash_pandas_object(demo, index=False).to_numpy().tobytes()).hexdigest()
            extra += f":demographics={digest[:16]}"
        return extra

    def demographics_path(self) -> Path | None:
        """The patients table in use, or None; an explicit path that does not exist is an error naming it."""
        opt = self._demographics_opt
        if opt is None or opt is False:
            return None
        if opt == "auto":
            return next((self.root / n for n in DEMOGRAPHICS_FILES if (self.root / n).is_file()), None)
        path = Path(opt).expanduser()
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{self.name}: demographics file {path} does not exist (MIMIC-IV hosp "
                "patients.csv[.gz], columns subject_id, gender, anchor_age)"
            )
        return path

    def _demographics(self, subjects: pd.Series) -> tuple[list[int | None], list[str | None]] | None:
        """(age, sex) per record from the patients table (None without one)."""
        path = self.demographics_path()
        if path is None:
            return None
        pt = read_csv_checked(path, PATIENT_COLUMNS, dtype={"subject_id": str, "gender": str})
        pt["subject_id"] = pt["subject_id"].astype(str).str.strip()
        pt = pt.drop_duplicates("subject_id", keep="first").set_index("subject_id")
        age_by = pd.to_numeric(pt["anchor_age"], errors="coerce").to_dict()
        sex_by = pt["gender"].astype(str).str.strip().str.upper().to_dict()
        ages: list[int | None] = []
        sexes: list[str | None] = []
        for subj in subjects:
            age, sex = age_by.get(subj, float("nan")), sex_by.get(subj, "")
            ok = bool(np.isfinite(age)) and sex in ("M", "F")
            ages.append(int(age) if ok else None)
            sexes.append(sex if ok else None)
        self.demographics_missing = sum(a is None for a in ages)
        if self.demographics_missing:
            log.warning("%s: %d of %d records have no age/sex in %s (subject missing or gender not M/F)", self.name,
                        self.demographics_missing, len(ages), path)  # fmt: skip
        return ages, sexes

    def _load_metadata(self) -> pd.DataFrame:
        rl = read_csv_checked(self.root / "record_list.csv", RECORD_COLUMNS, dtype={"subject_id": str, "study_id": str})
        mm_path = self.root / "machine_measurements.csv"
        mm = read_csv_checked(
            mm_path, MEASUREMENT_COLUMNS, dtype={"study_id": str, "subject_id": str}, low_memory=False
        )
        report_cols = sorted(
            (c for c in mm.columns if re.fullmatch(r"report_\d+", str(c))), key=lambda c: int(c.split("_")[1])
        )
        parts = mm[report_cols].to_numpy(dtype=object)
        problems: list[str | None] = []
        reports: list[str | None] = []
        for row in parts:  # ~800k rows: one regex search per row, not per cell
            strs = [x for x in row if isinstance(x, str)]
            bad = "report is not valid UTF-8" if _SURROGATE.search("\n".join(strs)) else None
            problems.append(bad)
            reports.append(
                None
                if bad
                else clean_report(
                    strs,
                    drop_boilerplate=self.drop_boilerplate,
                    ekg_to_ecg=self.ekg_to_ecg,
                    min_words=self.min_report_words,
                )
            )
        rep_index = pd.Index([str(s).strip() for s in mm["study_id"]])
        rep = pd.DataFrame(
            {"report": object_series(reports, rep_index), "report_problem": object_series(problems, rep_index)}
        )
        rep = rep[~rep.index.duplicated(keep="first")]
        out = pd.DataFrame(index=pd.Index([str(s).strip() for s in rl["study_id"]], name="record_id"))
        out["patient_id"] = object_series((clean_text(s) for s in rl["subject_id"]), out.index)
        out["report"] = object_series(rep["report"].reindex(out.index), out.index)
        out["report_problem"] = object_series(rep["report_problem"].reindex(out.index), out.index)
        out["codes"] = object_series(([] for _ in range(len(out))), out.index)
        out["path"] = rl["path"].astype(str).str.strip().to_numpy()
        if "ecg_time" in rl.columns:
            out["ecg_time"] = rl["ecg_time"].to_numpy()
        demo = self._demographics(out["patient_id"])
        if demo is not None:
            out["age"] = object_series(demo[0], out.index)
            out["sex"] = object_series(demo[1], out.index)
        order = np.argsort([int(i) if i.isdigit() else 0 for i in out.index], kind="stable")
        return out.iloc[order]

    def read(self, record_id: str) -> Record:
        row = self._row(record_id)
        base = self.root / row["path"]
        check_report(row, base.with_suffix(".hea"), self.require_report)
        signal, fs, _, names = read_wfdb(base, expected_fs=self.native_fs, allow_flat=self.allow_flat)
        return Record(
            signal=signal,
            fs=fs,
            record_id=str(record_id),
            patient_id=row["patient_id"],
            report=row["report"],
            codes=[],
            meta={
                "path": row["path"],
                "ecg_time": row.get("ecg_time"),
                "lead_names": names,
                **({"age": row["age"], "sex": row["sex"]} if "age" in row.index else {}),
            },
        )
