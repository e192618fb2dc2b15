"""A corrupt or missing record anywhere in a MIMIC-IV-ECG-layout corpus is a counted QC skip, never a crash
(the real reader over the synthetic writer's files, float16 storage, parallel build)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecg_data.cache import build_cache
from ecg_data.readers import get_reader
from ecg_data.synthetic import generate_records, write_mimic_iv_ecg


def test_damaged_records_are_counted_skips(tmp_path: Path) -> None:
    root = write_mimic_iv_ecg(tmp_path / "mimic", generate_records(14, 0, profile="mimic"))
    paths = pd.read_csv(root / "record_list.csv")["path"].tolist()
    (root / f"{paths[0]}.dat").unlink()  # missing signal file, first chunk
    dat = root / f"{paths[6]}.dat"
    dat.write_bytes(dat.read_bytes()[:999])  # truncated, middle
    (root / f"{paths[9]}.hea").write_bytes(b"\xff\xfe garbage\n")  # not a header
    (root / f"{paths[11]}.hea").write_text("x 12 500\n")  # malformed header, no signal lines
    (root / f"{paths[13]}.hea").unlink()  # missing header, last chunk
    # every synthetic report kept (no 4-word floor), so the only skips are the damaged files
    reader = get_reader("mimic_iv_ecg", root, min_report_words=0, ekg_to_ecg=False)
    ids = reader.metadata().index.tolist()
    split = build_cache(reader, ids, "melp", workers=2, chunk_size=4, progress=False, storage="float16")
    s = split.meta["summary"]
    assert s["records"] == 14 and s["written"] == 9 and s["skipped"] == 5
    assert len(split.qc) == 5 and set(split.qc["record_id"]) | set(split.record_ids) == set(ids)
    assert s["skipped_by_reason"].keys() >= {"signal file missing", "truncated signal file", "header file missing"}
