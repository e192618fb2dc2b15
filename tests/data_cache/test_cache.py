"""The record cache: exact round trip, QC skips counted and reported, keying, resume after a crash."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import wfdb

from ecg_data import cache as cache_mod
from ecg_data.cache import CachedSplit, CacheError, build_cache, cache_dir_for, cached_split
from ecg_data.preprocess import CropPad, Preset, Resample, get_preset
from ecg_data.record import LEADS

GOOD = ["1", "2", "3", "4", "5", "6", "7", "8"]


def test_round_trip_raw500_equals_rdsamp_exactly(fake_reader, fake_ids, fake_root: Path) -> None:
    split = build_cache(fake_reader, fake_ids, "raw500", workers=1, progress=False, chunk_size=3)
    assert split.signals.shape == (8, 12, 5000) and split.signals.dtype == np.float32
    assert isinstance(split.signals, np.memmap)
    assert split.record_ids == GOOD
    for i, rid in enumerate(split.record_ids):
        sig, fields = wfdb.rdsamp(str(fake_root / f"rec{rid}"))
        order = [fields["sig_name"].index(lead) for lead in LEADS]  # file order is not the standard order
        expected = np.zeros((12, 5000), np.float32)
        n = min(5000, sig.shape[0])
        expected[:, :n] = sig[:n, order].T.astype(np.float32)
        assert np.array_equal(split[i], expected), rid


def test_index_columns_and_qc_flags(fake_reader, fake_ids) -> None:
    split = build_cache(fake_reader, fake_ids, "raw500", workers=1, progress=False)
    idx = split.index.set_index("record_id")
    assert idx.loc["1", "patient_id"] == "p1"
    assert idx.loc["1", "report"] == "sinus rhythm. normal ecg"
    assert idx.loc["7", "report"] is None
    assert idx.loc["8", "codes"] == ["AFIB", "PVC"]
    assert idx.loc["7", "padded"] and not idx.loc["7", "cropped"]
    assert idx.loc["8", "cropped"] and not idx.loc["8", "padded"]
    assert idx.loc["7", "n_samples_before_croppad"] == 3000
    assert not idx.loc["1", ["padded", "cropped"]].any()
    assert split.index["row"].tolist() == list(range(8))
    assert not split[6][:, 3000:].any()  # the padding is zeros


def test_qc_skips_are_counted_listed_and_reported(fake_reader, fake_ids, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ecg_data.cache"):
        split = build_cache(fake_reader, fake_ids, "raw500", workers=2, progress=False, chunk_size=2)
    assert len(split) == 8
    qc = split.qc.set_index("record_id")
    assert sorted(qc.index) == ["10", "9"]
    assert qc.loc["9", "reason"].startswith("NaN/Inf samples")
    assert qc.loc["10", "reason"].startswith("unreadable signal file") and qc.loc["10", "path"].endswith("rec10.dat")
    summary = split.meta["summary"]
    assert summary["records"] == 10 and summary["written"] == 8 and summary["skipped"] == 2
    assert summary["skipped_by_reason"] == {"NaN/Inf samples in signal": 1, "unreadable signal file": 1}
    assert summary["padded"] == 1 and summary["cropped"] == 1
    line = next(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert "8 of 10 records written, 2 skipped" in line and "unreadable signal file: 1" in line


def test_parallel_build_equals_serial_build(fake_reader, fake_ids, tmp_path: Path) -> None:
    a = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, out_dir=tmp_path / "a")
    b = build_cache(fake_reader, fake_ids, "melp", workers=2, progress=False, out_dir=tmp_path / "b", chunk_size=1)
    assert np.array_equal(np.asarray(a.signals), np.asarray(b.signals))
    assert a.index.equals(b.index) and a.qc.equals(b.qc)
    assert float(a.signals.max()) <= 1.0 and float(a.signals.min()) >= 0.0


def test_finished_cache_is_reused_not_rebuilt(fake_reader, fake_ids) -> None:
    first = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False)
    fake_reader.fail_on = "1"  # any read now would crash: the second call must only open the cache
    second = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False)
    assert second.path == first.path and np.array_equal(np.asarray(first.signals), np.asarray(second.signals))
    assert CachedSplit.open(first.path).record_ids == GOOD


def test_key_depends_on_preset_ids_and_reader(fake_reader, fake_ids) -> None:
    base = cache_dir_for(fake_reader, fake_ids, get_preset("raw500"))
    custom = Preset("raw500", 500, 5000, (Resample(500), CropPad(5000, "center")))  # same name, one parameter differs
    assert cache_dir_for(fake_reader, fake_ids, custom) != base
    assert cache_dir_for(fake_reader, fake_ids[:-1], get_preset("raw500")) != base
    assert cache_dir_for(fake_reader, list(reversed(fake_ids)), get_preset("raw500")) != base
    other_version = SimpleNamespace(name="fake", version="0.1", fingerprint=fake_reader.fingerprint)
    assert cache_dir_for(other_version, fake_ids, get_preset("raw500")) != base
    assert base.parent.name == "records" and cache_dir_for(fake_reader, fake_ids, get_preset("raw500")) == base


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_injected_crash_equals_uninterrupted_build(
    fake_reader, fake_ids, tmp_path: Path, workers: int
) -> None:
    reference = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, out_dir=tmp_path / "ref")

    fake_reader.fail_on = "7"  # 7th id: chunks (1,2) (3,4) (5,6) finish, chunk (7,8) crashes
    with pytest.raises(RuntimeError, match="injected failure"):
        build_cache(
            fake_reader, fake_ids, "melp", workers=workers, progress=False, chunk_size=2, out_dir=tmp_path / "run"
        )
    path = cache_dir_for(fake_reader, fake_ids, get_preset("melp"), tmp_path / "run")
    progress = json.loads((path / "progress.json").read_text())
    assert progress["chunks_done"] == 3 and progress["rows"] == 6
    assert not (path / "complete.json").exists()

    fake_reader.fail_on = None
    fake_reader.reads = 0
    resumed = build_cache(
        fake_reader, fake_ids, "melp", workers=1, progress=False, chunk_size=2, out_dir=tmp_path / "run"
    )
    assert fake_reader.reads == 4  # only the two unfinished chunks were read again
    assert np.array_equal(np.asarray(resumed.signals), np.asarray(reference.signals))
    assert resumed.index.equals(reference.index) and resumed.qc.equals(reference.qc)
    assert resumed.meta["summary"] == reference.meta["summary"]


def test_interrupt_between_chunks_then_rerun_completes(fake_reader, fake_ids, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(c: int) -> None:
        if c == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "_after_chunk_hook", crash)
    with pytest.raises(KeyboardInterrupt):
        build_cache(fake_reader, fake_ids, "raw500", workers=2, progress=False, chunk_size=3)
    monkeypatch.setattr(cache_mod, "_after_chunk_hook", None)
    fake_reader.reads = 0
    split = build_cache(fake_reader, fake_ids, "raw500", workers=1, progress=False, chunk_size=3)
    assert fake_reader.reads == 4 and split.record_ids == GOOD


def test_incomplete_cache_cannot_be_opened(fake_reader, fake_ids, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(c: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "_after_chunk_hook", crash)
    with pytest.raises(KeyboardInterrupt):
        build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False, chunk_size=4)
    path = cache_dir_for(fake_reader, fake_ids, get_preset("raw100"))
    assert not (path / "complete.json").exists()
    with pytest.raises(CacheError, match="not a finished cache"):
        CachedSplit.open(path)


def test_bad_arguments_raise_clear_errors(fake_reader) -> None:
    with pytest.raises(ValueError, match="no record ids"):
        build_cache(fake_reader, [], "raw500", progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        build_cache(fake_reader, ["1", "1"], "raw500", progress=False)


def test_cached_split_builds_the_tasks_split(fake_reader) -> None:
    task = SimpleNamespace(
        name="fake_task", splits={"train": ["1", "2", "9"], "test": ["3"]}, reader=lambda: fake_reader
    )
    split = cached_split(task, "train", "raw100", workers=1, progress=False)
    assert split.record_ids == ["1", "2"] and split.qc["record_id"].tolist() == ["9"]
    assert split.signals.shape == (2, 12, 1000) and split.fs == 100.0
    with pytest.raises(KeyError, match="no split 'val'"):
        cached_split(task, "val", "raw100")


def test_progress_marker_is_json_and_parts_are_removed_when_done(fake_reader, fake_ids) -> None:
    split = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False, chunk_size=3)
    assert not (split.path / "parts").exists() and not (split.path / "progress.json").exists()
    assert json.loads((split.path / "complete.json").read_text())["rows"] == 8
    assert not (split.path / "signals.partial.npy").exists()


def test_concurrent_builders_of_one_cache_build_it_once(fake_reader, fake_ids) -> None:
    import threading

    results: list[CachedSplit] = []

    def build() -> None:
        results.append(build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False, chunk_size=2))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len({r.path for r in results}) == 1
    assert fake_reader.reads == len(fake_ids)  # one build; the others waited on the lock and opened it
    assert all(np.array_equal(np.asarray(r.signals), np.asarray(results[0].signals)) for r in results)


def test_progress_bar_run(fake_reader, fake_ids, capsys: pytest.CaptureFixture[str]) -> None:
    split = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=True, chunk_size=4)
    assert len(split) == 8
    assert "cache fake/raw100" in capsys.readouterr().err
