"""The cache round-trips the real PTB-XL sample (ecg_id 1-500, 500 Hz) with preset raw500: the same arrays
as ``wfdb.rdsamp`` (exact in float32), leads reordered to the standard order by header name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecg_data.cache import build_cache
from ecg_data.leads import to_standard_order
from ecg_data.readers import get_reader
from ecg_data.torch_datasets import CachedECGDataset


def _check_round_trip(ptbxl500: Path, ids: list[str], workers: int) -> None:
    reader = get_reader("ptbxl", ptbxl500, fs=500)
    split = build_cache(reader, ids, "raw500", workers=workers, progress=False)
    assert split.qc.empty, split.qc
    assert split.record_ids == ids and split.signals.shape == (len(ids), 12, 5000)
    meta = reader.metadata()
    for i, rid in enumerate(ids):
        base = ptbxl500 / meta.loc[rid, "path"]
        sig, fields = wfdb.rdsamp(str(base))
        assert fields["fs"] == 500 and sig.shape == (5000, 12)
        names = [n.upper() for n in fields["sig_name"]]
        order = [names.index(lead.upper()) for lead in ("I", "II", "III", "aVR", "aVL", "aVF",
                                                        "V1", "V2", "V3", "V4", "V5", "V6")]  # fmt: skip
        expected = sig[:, order].T.astype(np.float32)
        assert np.array_equal(split[i], expected), rid
        # and the readers' own lead mapping agrees
        assert np.array_equal(to_standard_order(sig.T, fields["sig_name"], base).astype(np.float32), expected)
    idx = split.index.set_index("record_id")
    for rid in ids:
        assert idx.loc[rid, "report"] == meta.loc[rid, "report"]
        assert idx.loc[rid, "patient_id"] == meta.loc[rid, "patient_id"]
        assert idx.loc[rid, "codes"] == list(meta.loc[rid, "codes"])
    assert not split.index["padded"].any() and not split.index["cropped"].any()


def test_ptbxl500_round_trip_raw500_sample(ptbxl500: Path) -> None:
    ids = [str(i) for i in range(1, 501, 25)]  # 20 records spread over the sample
    _check_round_trip(ptbxl500, ids, workers=2)


@pytest.mark.slow
def test_ptbxl500_round_trip_raw500_all(ptbxl500: Path) -> None:
    _check_round_trip(ptbxl500, [str(i) for i in range(1, 501)], workers=2)


def test_ptbxl500_melp_dataset_items(ptbxl500: Path) -> None:
    reader = get_reader("ptbxl", ptbxl500, fs=500)
    split = build_cache(reader, ["1", "2", "3"], "melp", workers=1, progress=False)
    item = CachedECGDataset(split)[0]
    assert item["ecg"].shape == (12, 5000)
    assert float(item["ecg"].min()) == 0.0 and float(item["ecg"].max()) == pytest.approx(1.0, abs=1e-6)
    assert item["report"] == reader.metadata().loc["1", "report"]


def test_cached_split_of_a_real_task_with_labels(ptbxl500: Path) -> None:
    from ecg_data.cache import cached_split
    from ecg_data.tasks import get_task

    task = get_task("ptbxl_super", root=ptbxl500)
    split = cached_split(task, "test", "raw100", workers=1, progress=False)
    assert len(split) + len(split.qc) == len(task.splits["test"])
    assert set(split.record_ids) <= set(task.splits["test"])
    ds = CachedECGDataset(split, labels=task.y(split.record_ids))
    item = ds[0]
    assert item["ecg"].shape == (12, 1000) and item["labels"].shape == (len(task.classes),)
    assert np.array_equal(item["labels"].numpy(), task.y([split.record_ids[0]])[0])
    assert cached_split(task, "test", "raw100").path == split.path  # reused, not rebuilt
