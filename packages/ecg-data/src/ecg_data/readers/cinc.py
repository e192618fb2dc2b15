"""Shared reader for the PhysioNet/CinC Challenge layout (``.hea`` + ``.mat``, ``# Dx:`` SNOMED codes).

Used by CPSC2018 (Challenge 2020 release) and Chapman-Shaoxing-Ningbo (ecg-arrhythmia 1.0.0), which
share the header format::

    JS00001 12 500 5000
    JS00001.mat 16x1+24 1000.0(0)/mV 16 0 -254 21756 0 I
    ...
    # Age: 85
    # Sex: Male
    # Dx: 164889003,59118001

The ``.mat`` holds one variable ``val`` (12, T) int16 in ADC units; mV = (val - baseline) / gain.
The metadata scan reads header *text* only (fast); a header it cannot decode, or one without a
``# Dx:`` line, is left out of the table and listed in ``reader.skipped`` with the reason (logged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ecg_data.readers.base import (
    DatasetReader,
    parse_age,
    parse_header_comments,
    parse_sex,
    read_wfdb,
    split_codes,
)
from ecg_data.readers.snomed import cpsc_classes_from_codes
from ecg_data.record import DatasetNotFoundError, Record, RecordError

log = logging.getLogger(__name__)


class ChallengeLayoutReader(DatasetReader):
    """Any folder tree of Challenge-format records; subclasses fix name, layout and the scanned folder."""

    native_fs = 500
    records_dir: str = ""  # folder under root that holds the records (scanned recursively)

    def __init__(self, root: str | Path, *, allow_flat: bool = False, expected_fs: int = 500, **kw: Any) -> None:
        self.allow_flat = allow_flat
        self.expected_fs = expected_fs
        super().__init__(root, **kw)

    def required_paths(self) -> list[str]:
        return [self.records_dir] if self.records_dir else []

    def _check_layout(self) -> None:
        super()._check_layout()
        if next((self.root / self.records_dir).rglob("*.hea"), None) is None:
            raise DatasetNotFoundError(
                f"{self.name} {self.version}: no .hea files under {self.root / self.records_dir}.\n"
                f"Expected layout:\n{self.expected_layout}\nDownload it from {self.published_at}"
            )

    def _header_files(self) -> list[Path]:
        return sorted((self.root / self.records_dir).rglob("*.hea"))

    def _load_metadata(self) -> pd.DataFrame:
        rows: dict[str, dict[str, Any]] = {}
        for hea in self._header_files():
            rid = hea.stem
            try:
                text = hea.read_bytes().decode("utf-8")
            except (UnicodeDecodeError, OSError) as e:
                self._skip(rid, f"{hea}: unreadable header: {e}")
                continue
            comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
            fields = parse_header_comments(comments)
            if "dx" not in fields:
                self._skip(rid, f"{hea}: no '# Dx:' line in header (labels unknown)")
                continue
            if rid in rows:
                raise RecordError(hea, f"record id {rid!r} occurs twice (also {rows[rid]['path']})")
            codes = split_codes(fields["dx"])
            rows[rid] = {
                "patient_id": None,
                "report": None,
                "codes": codes,
                "path": str(hea.with_suffix("").relative_to(self.root)),
                "age": parse_age(fields.get("age")),
                "sex": parse_sex(fields.get("sex")),
                "cpsc_classes": cpsc_classes_from_codes(codes),
            }
        df = pd.DataFrame.from_dict(rows, orient="index")
        if df.empty:
            df = pd.DataFrame(columns=["patient_id", "report", "codes", "path", "age", "sex", "cpsc_classes"])
        return df.sort_index()

    def _skip(self, rid: str, reason: str) -> None:
        self.skipped[rid] = reason
        log.warning("%s: not indexing %s: %s", self.name, rid, reason)

    def read(self, record_id: str) -> Record:
        row = self._row(record_id)
        signal, fs, comments, names = read_wfdb(
            self.root / row["path"], expected_fs=self.expected_fs, allow_flat=self.allow_flat
        )
        return Record(
            signal=signal,
            fs=fs,
            record_id=str(record_id),
            patient_id=None,
            report=None,
            codes=list(row["codes"]),
            meta={
                "path": row["path"],
                "age": row["age"],
                "sex": row["sex"],
                "cpsc_classes": list(row["cpsc_classes"]),
                "lead_names": names,
            },
        )
