"""CODE-15% and the CODE test set readers (Telehealth Network of Minas Gerais, Brazil): HDF5 tracings.

Dataset card (CODE-15%, ``code15``)
-----------------------------------
- Source: Zenodo, "CODE-15%: a large scale annotated dataset of 12-lead ECGs", https://zenodo.org/record/4916206
- Version: 1.0.0 (345,779 exams of 233,770 patients, 2010-2016; a 15 % patient sample of CODE).
- License: Creative Commons Attribution 4.0 (CC BY 4.0).
- Citation: Ribeiro, A. H. et al. (2021). CODE-15%: a large scale annotated dataset of 12-lead ECGs. Zenodo,
  doi:10.5281/zenodo.4916206; Ribeiro, A. H. et al. (2020). Automatic diagnosis of the 12-lead ECG using a deep
  neural network. Nature Communications 11, 1760.
- Layout::

    <root>/exams.csv              exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB, LBBB, SB, ST, AF,
                                  patient_id, death, timey, normal_ecg, trace_file
    <root>/exams_part0.hdf5 ...   datasets 'tracings' (N, 4096, 12) float32 and 'exam_id' (N,)
    (exams_part0.hdf5 ... exams_part17.hdf5, unzipped from exams_part{i}.zip; trace_file names the part)

- Signals: 400 Hz, 4096 samples (7 or 10 s recordings zero-padded at both ends to 4096), leads in the order
  DI, DII, DIII, AVR, AVL, AVF, V1-V6 (the authors' README). The README gives the scale as "1e-4V" and
  also says "if the signal is in V it should be multiplied by 1000" before use; we follow the conversion
  instruction, i.e. the stored values are taken as millivolts (``scale_to_mv=1.0``; pass another factor to
  override). The zero padding is trimmed (``trim_padding=True``) so that presets see the recorded part only.
- Labels: the six booleans 1dAVb, RBBB, LBBB, SB, ST, AF (automatic-report labels, see the paper), plus
  ``normal_ecg``. Record id = ``exam_id``; patient id = ``patient_id``.
- Known quirks: exams listed in ``exams.csv`` whose part file is absent (partial downloads) or whose id is not
  in that file's ``exam_id`` are not indexed and are listed in ``reader.skipped`` (logged); each part holds
  padding rows with ``exam_id`` 0 that no exam refers to.

Dataset card (CODE test set, ``code_test``)
-------------------------------------------
- Source: Zenodo, https://doi.org/10.5281/zenodo.3625006 (``data.zip``), companion to Ribeiro et al. (2020).
- Version: 1.0 (827 exams, each annotated by two certified cardiologists, disagreements settled by a third).
- License: Creative Commons Attribution 4.0 (CC BY 4.0). Citation: Ribeiro et al. (2020), as above.
- Layout::

    <root>/ecg_tracings.hdf5                 dataset 'tracings' (827, 4096, 12), same format as CODE-15%
    <root>/attributes.csv                    age, is_male (row i = tracing i)
    <root>/**/gold_standard.csv              1dAVb, RBBB, LBBB, SB, AF, ST (0/1; row i = tracing i)
    <root>/**/cardiologist1.csv, cardiologist2.csv, cardiology_residents.csv, emergency_residents.csv,
             medical_students.csv            the same columns, other raters (optional)

- Record id = row number (``"0"`` ... ``"826"``); labels = the gold standard; the other raters' positive
  classes are metadata columns ``rater_<name>`` for comparing a model with the doctors.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.leads import to_standard_order
from ecg_data.readers.base import DatasetReader, check_signal, clean_text, read_csv_checked
from ecg_data.record import DatasetNotFoundError, Record, RecordError

log = logging.getLogger(__name__)

CODE_CLASSES: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
#: Row order of the 12 leads in the HDF5 tracings (authors' README).
CODE_LEAD_ORDER = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
EXAMS_COLUMNS = ("exam_id", "patient_id", "trace_file", *CODE_CLASSES)
CODE_FS = 400
CODE_LENGTH = 4096
RATERS = ("cardiologist1", "cardiologist2", "cardiology_residents", "emergency_residents", "medical_students")
_CARD = __doc__


def _layout(which: int) -> str:
    return _CARD.split("- Layout::", 2)[which + 1].split("\n- ", 1)[0].strip("\n")


def _truthy(v: Any) -> bool:
    t = clean_text(v)
    return t is not None and t.lower() in ("true", "1", "1.0", "yes")


class _HDF5Tracings:
    """Lazily opened HDF5 files, one handle per file (h5py is imported only here)."""

    def __init__(self) -> None:
        self._open: dict[Path, Any] = {}

    def dataset(self, path: Path, name: str) -> Any:
        try:
            import h5py
        except ImportError as e:  # pragma: no cover - h5py is a dependency of ecg-data
            raise RecordError(path, "reading CODE HDF5 files needs h5py (pip install h5py)") from e
        if path not in self._open:
            if not path.is_file():
                raise RecordError(path, "signal file missing")
            try:
                self._open[path] = h5py.File(path, "r")
            except OSError as e:
                raise RecordError(path, f"unreadable HDF5 file: {e}") from e
        f = self._open[path]
        if name not in f:
            raise RecordError(path, f"HDF5 file has no dataset {name!r} (found {sorted(f.keys())})")
        return f[name]

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def __getstate__(self) -> dict:  # worker processes reopen their own handles
        return {"_open": {}}


def _tracing(files: _HDF5Tracings, path: Path, row: int, *, scale: float, trim: bool, allow_flat: bool) -> np.ndarray:
    ds = files.dataset(path, "tracings")
    if ds.ndim != 3 or ds.shape[2] != 12:
        raise RecordError(path, f"'tracings' must be (N, samples, 12), found {ds.shape}")
    if not 0 <= row < ds.shape[0]:
        raise RecordError(path, f"row {row} outside 'tracings' with {ds.shape[0]} rows")
    try:
        x = np.asarray(ds[row], dtype=np.float64).T  # (12, T)
    except OSError as e:
        raise RecordError(path, f"truncated or corrupt HDF5 data at row {row}: {e}") from e
    if trim and np.isfinite(x).all():
        nz = np.flatnonzero(np.any(x != 0, axis=0))
        if nz.size == 0:
            raise RecordError(path, f"row {row}: every sample is zero (empty tracing)")
        x = x[:, nz[0] : nz[-1] + 1]
    signal = to_standard_order(x * scale, CODE_LEAD_ORDER, path)
    return check_signal(signal, f"{path}[{row}]", allow_flat=allow_flat)


class _CODEReader(DatasetReader):
    """What CODE-15% and the CODE test set share: HDF5 tracings opened lazily, the unit scale, padding trim."""

    def __init__(
        self,
        root: str | Path,
        *,
        scale_to_mv: float = 1.0,
        trim_padding: bool = True,
        allow_flat: bool = False,
        **kw: Any,
    ) -> None:
        self.scale_to_mv, self.trim_padding, self.allow_flat = float(scale_to_mv), trim_padding, allow_flat
        self._files = _HDF5Tracings()
        super().__init__(root, **kw)


class CODE15Reader(_CODEReader):
    name = "code15"
    version = "1.0.0"
    native_fs = CODE_FS
    expected_layout = _layout(0)
    published_at = "https://zenodo.org/record/4916206"

    def required_paths(self) -> list[str]:
        return ["exams.csv"]

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {"exams.csv": EXAMS_COLUMNS}

    def _check_layout(self) -> None:
        super()._check_layout()
        if next(self.root.glob("exams_part*.hdf5"), None) is None:
            raise DatasetNotFoundError(
                f"{self.name} {self.version}: no exams_part*.hdf5 under {self.root} (unzip exams_part{{i}}.zip).\n"
                f"Expected layout:\n{self.expected_layout}\nDownload it from {self.published_at}"
            )

    def fingerprint_extra(self) -> str:
        return f"scale={self.scale_to_mv:g}|trim={self.trim_padding}"

    def close(self) -> None:
        """Close the HDF5 handles (they are reopened on the next read)."""
        self._files.close()

    def _load_metadata(self) -> pd.DataFrame:
        csv = self.root / "exams.csv"
        df = read_csv_checked(csv, EXAMS_COLUMNS, dtype={"exam_id": str, "patient_id": str, "trace_file": str})
        positions: dict[str, dict[str, int]] = {}
        rows: dict[str, dict[str, Any]] = {}
        for _, r in df.iterrows():
            rid = clean_text(r["exam_id"])
            if rid is None:
                raise RecordError(csv, "a row has no exam_id")
            rid = rid.split(".")[0]
            trace = clean_text(r["trace_file"]) or ""
            if trace and not trace.endswith((".hdf5", ".h5")):
                trace = re.sub(r"\.zip$", "", trace) + ".hdf5"
            if trace not in positions:
                positions[trace] = self._exam_positions(self.root / trace) if trace else {}
            if rid not in positions[trace]:
                why = (
                    "no trace_file"
                    if not trace
                    else (f"{trace} absent" if not (self.root / trace).is_file() else f"exam_id not in {trace}")
                )
                self.skipped[rid] = why
                continue
            if rid in rows:
                raise RecordError(csv, f"exam_id {rid!r} listed twice")
            classes = [c for c in CODE_CLASSES if _truthy(r[c])]
            pid = clean_text(r["patient_id"])
            rows[rid] = {
                "patient_id": pid.split(".")[0] if pid else None,
                "report": None,
                "codes": classes,
                "path": trace,
                "row": positions[trace][rid],
                "code_classes": classes,
                "normal_ecg": _truthy(r.get("normal_ecg")),
                "age": pd.to_numeric(r.get("age"), errors="coerce"),
            }
        if self.skipped:
            log.warning(
                "%s: %d exam(s) of exams.csv not indexed (e.g. %s)",
                self.name,
                len(self.skipped),
                next(iter(self.skipped.items())),
            )
        out = pd.DataFrame.from_dict(rows, orient="index")
        if out.empty:
            out = pd.DataFrame(
                columns=["patient_id", "report", "codes", "path", "row", "code_classes", "normal_ecg", "age"]
            )
        return out.sort_index()

    def _exam_positions(self, path: Path) -> dict[str, int]:
        if not path.is_file():
            return {}
        ids = np.asarray(self._files.dataset(path, "exam_id")[()]).ravel()
        n = self._files.dataset(path, "tracings").shape[0]
        if ids.shape[0] != n:
            raise RecordError(path, f"'exam_id' has {ids.shape[0]} entries but 'tracings' {n} rows")
        return {str(int(e)): i for i, e in enumerate(ids) if int(e) != 0}

    def read(self, record_id: str) -> Record:
        row = self._row(record_id)
        path = self.root / row["path"]
        signal = _tracing(
            self._files,
            path,
            int(row["row"]),
            scale=self.scale_to_mv,
            trim=self.trim_padding,
            allow_flat=self.allow_flat,
        )
        return Record(
            signal=signal,
            fs=float(CODE_FS),
            record_id=str(record_id),
            patient_id=row["patient_id"],
            codes=list(row["codes"]),
            meta={"path": row["path"], "row": int(row["row"]), "age": row["age"]},
        )


class CODETestReader(_CODEReader):
    name = "code_test"
    version = "1.0"
    native_fs = CODE_FS
    expected_layout = _layout(1)
    published_at = "https://doi.org/10.5281/zenodo.3625006"
    tracings_file = "ecg_tracings.hdf5"

    def required_paths(self) -> list[str]:
        return [self.tracings_file]

    def _annotation(self, name: str) -> Path | None:
        return next(iter(sorted(self.root.rglob(f"{name}.csv"))), None)

    def _check_layout(self) -> None:
        super()._check_layout()
        if self._annotation("gold_standard") is None:
            raise DatasetNotFoundError(
                f"{self.name} {self.version}: no gold_standard.csv under {self.root}.\n"
                f"Expected layout:\n{self.expected_layout}\nDownload it from {self.published_at}"
            )

    def _check_columns(self) -> None:
        gold = self._annotation("gold_standard")
        if gold is not None:
            read_csv_checked(gold, CODE_CLASSES, nrows=0)

    def fingerprint_extra(self) -> str:
        return f"scale={self.scale_to_mv:g}|trim={self.trim_padding}"

    def close(self) -> None:
        """Close the HDF5 handle (reopened on the next read)."""
        self._files.close()

    def _load_metadata(self) -> pd.DataFrame:
        gold_path = self._annotation("gold_standard")
        assert gold_path is not None  # checked at construction
        gold = read_csv_checked(gold_path, CODE_CLASSES)
        n = self._files.dataset(self.root / self.tracings_file, "tracings").shape[0]
        if len(gold) != n:
            raise RecordError(
                gold_path, f"{len(gold)} rows but {self.tracings_file} holds {n} tracings (row i = tracing i)"
            )
        raters = {}
        for name in RATERS:
            p = self._annotation(name)
            if p is not None:
                t = read_csv_checked(p, CODE_CLASSES)
                if len(t) != n:
                    raise RecordError(p, f"{len(t)} rows but {n} tracings")
                raters[name] = t
        attrs = self.root / "attributes.csv"
        ages = read_csv_checked(attrs, ("age",))["age"] if attrs.is_file() else None
        rows: dict[str, dict[str, Any]] = {}
        for i in range(n):
            classes = [c for c in CODE_CLASSES if _truthy(gold.iloc[i][c])]
            rows[str(i)] = {
                "patient_id": None,
                "report": None,
                "codes": classes,
                "path": self.tracings_file,
                "row": i,
                "code_classes": classes,
                "age": None if ages is None else pd.to_numeric(ages.iloc[i], errors="coerce"),
                **{f"rater_{k}": [c for c in CODE_CLASSES if _truthy(t.iloc[i][c])] for k, t in raters.items()},
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        return out.loc[sorted(out.index, key=int)]

    def read(self, record_id: str) -> Record:
        row = self._row(record_id)
        signal = _tracing(
            self._files,
            self.root / row["path"],
            int(row["row"]),
            scale=self.scale_to_mv,
            trim=self.trim_padding,
            allow_flat=self.allow_flat,
        )
        return Record(
            signal=signal,
            fs=float(CODE_FS),
            record_id=str(record_id),
            codes=list(row["codes"]),
            meta={"path": row["path"], "row": int(row["row"])},
        )
