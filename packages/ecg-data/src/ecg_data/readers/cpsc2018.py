"""CPSC2018 (China Physiological Signal Challenge 2018) readers: Challenge 2020 layout and original layout.

Dataset card
------------
- Source: CPSC2018, http://2018.icbeb.org/Challenge.html (original release); re-released with
  SNOMED-CT labels as part of the PhysioNet/CinC Challenge 2020 training data,
  https://physionet.org/content/challenge-2020/1.0.2/ (``training/cpsc_2018``).
- Version: Challenge 2020 release 1.0.2 (6,877 records, A0001-A6877) / original 2018 release.
- License: Challenge release CC BY 4.0; the original release is free for research use.
- Citation: Liu, F. et al. (2018). An Open Access Database for Evaluating the Algorithms of
  Electrocardiogram Rhythm and Morphology Abnormality Detection. J. Med. Imaging Health Inform. 8(7),
  1368-1373. Perez Alday, E. A. et al. (2020). Classification of 12-lead ECGs: the PhysioNet/Computing
  in Cardiology Challenge 2020. Physiol. Meas. 41, 124003.
- Layout (``cpsc2018``, Challenge 2020)::

    <root>/**/A0001.hea   header: 12 leads, 500 Hz; comments '# Age:', '# Sex:', '# Dx: <SNOMED codes>'
    <root>/**/A0001.mat   variable 'val' (12, T) int16 ADC units (gain 1000/mV)

- Layout (``cpsc2018_original``)::

    <root>/REFERENCE.csv          Recording,First_label,Second_label,Third_label (classes 1..9)
    <root>/**/A0001.mat           struct 'ECG' with fields 'sex', 'age', 'data' (12, T) in mV

- Classes (both layouts): NORM, AF, I-AVB, LBBB, RBBB, PAC, PVC, STD, STE; SNOMED codes in
  ``ecg_data.readers.snomed`` (exact codes, with the Challenge's equivalent codes).
- Known quirks: records are 6-60 s long (variable T); up to three labels per record; no patient ids
  (so splits cannot be patient-disjoint); the original ``.mat`` has no lead names, so its rows are
  mapped by the order the organisers document (I, II, III, aVR, aVL, aVF, V1-V6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.leads import to_standard_order
from ecg_data.readers.base import DatasetReader, check_signal, parse_age, parse_sex, read_csv_checked
from ecg_data.readers.cinc import ChallengeLayoutReader
from ecg_data.readers.snomed import CPSC_ORIGINAL_LABELS, CPSC_SNOMED
from ecg_data.record import DatasetNotFoundError, Record, RecordError

_LAYOUT = __doc__.split("- Layout (``cpsc2018``, Challenge 2020)::", 1)[1].split("- Layout (``cpsc2018_original``)::")
REFERENCE_COLUMNS = ("Recording", "First_label", "Second_label", "Third_label")
#: Row order of the original CPSC2018 ``ECG.data`` (CPSC2018 challenge description; no names in the file).
ORIGINAL_LEAD_ORDER = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


class CPSC2018Reader(ChallengeLayoutReader):
    """CPSC2018 in the Challenge 2020 layout (any folder tree of ``A*.hea`` + ``A*.mat``)."""

    name = "cpsc2018"
    version = "challenge2020-1.0.2"
    expected_layout = _LAYOUT[0].strip("\n")
    published_at = "https://physionet.org/content/challenge-2020/1.0.2/ (training/cpsc_2018)"


class CPSC2018OriginalReader(DatasetReader):
    """CPSC2018 as first released: ``REFERENCE.csv`` + ``.mat`` files with an ``ECG`` struct."""

    name = "cpsc2018_original"
    version = "2018"
    native_fs = 500
    expected_layout = _LAYOUT[1].split("- Classes")[0].strip("\n")
    published_at = "http://2018.icbeb.org/Challenge.html"

    def __init__(self, root: str | Path, *, allow_flat: bool = False, **kw: Any) -> None:
        self.allow_flat = allow_flat
        super().__init__(root, **kw)

    def required_paths(self) -> list[str]:
        return ["REFERENCE.csv"]

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {"REFERENCE.csv": REFERENCE_COLUMNS}

    def _load_metadata(self) -> pd.DataFrame:
        path = self.root / "REFERENCE.csv"
        cols = REFERENCE_COLUMNS
        ref = read_csv_checked(path, cols, dtype={"Recording": str})
        mats = {p.stem: p for p in sorted(self.root.rglob("*.mat"))}
        rows: dict[str, dict[str, Any]] = {}
        for _, r in ref.iterrows():
            rid = str(r["Recording"]).strip()
            classes = []
            for c in cols[1:]:
                v = r[c]
                if pd.isna(v) or str(v).strip() == "":
                    continue
                try:
                    classes.append(CPSC_ORIGINAL_LABELS[int(float(v))])
                except (KeyError, ValueError) as e:
                    raise RecordError(path, f"{rid}: {c}={v!r} is not a CPSC class number 1..9") from e
            if rid in rows:
                raise RecordError(path, f"recording {rid!r} listed twice")
            mat = mats.get(rid)
            rows[rid] = {
                "patient_id": None,
                "report": None,
                # Codes in the same vocabulary as the Challenge layout (first SNOMED code of each class).
                "codes": [CPSC_SNOMED[c][0] for c in classes],
                "path": str(mat.relative_to(self.root)) if mat else f"{rid}.mat",
                "cpsc_classes": sorted(set(classes)),
                "labels_ordered": classes,
            }
        return pd.DataFrame.from_dict(rows, orient="index").sort_index()

    def read(self, record_id: str) -> Record:
        import scipy.io

        row = self._row(record_id)
        path = self.root / row["path"]
        if not path.is_file():
            raise RecordError(path, "signal file missing")
        try:
            mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        except Exception as e:
            raise RecordError(path, f"unreadable or truncated .mat file: {type(e).__name__}: {e}") from e
        ecg = mat.get("ECG")
        if ecg is None or not hasattr(ecg, "data"):
            raise RecordError(path, "no 'ECG' struct with a 'data' field")
        data = np.asarray(ecg.data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] != 12:
            raise RecordError(path, f"expected 12 leads, 'ECG.data' has shape {data.shape}")
        signal = check_signal(to_standard_order(data, ORIGINAL_LEAD_ORDER, path), path, allow_flat=self.allow_flat)
        meta = {
            "path": row["path"],
            "age": parse_age(str(getattr(ecg, "age", ""))),
            "sex": parse_sex(str(getattr(ecg, "sex", ""))),
            "cpsc_classes": list(row["cpsc_classes"]),
        }
        return Record(signal=signal, fs=500.0, record_id=str(record_id), codes=list(row["codes"]), meta=meta)

    def _check_layout(self) -> None:
        super()._check_layout()
        if next(self.root.rglob("*.mat"), None) is None:
            raise DatasetNotFoundError(
                f"{self.name}: no .mat files under {self.root}.\nExpected layout:\n{self.expected_layout}\n"
                f"Download it from {self.published_at}"
            )
