"""Cache storage dtype and normalisation placement: float16 caches, deferred (on-device) normalisation,
old float32 caches still open under their old key, and the numpy/torch normalisers agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecg_data import cache as cache_mod
from ecg_data.cache import CachedSplit, CacheError, build_cache, cache_dir_for, resolve_storage
from ecg_data.paths import stable_hash
from ecg_data.preprocess import MinMaxNormalize, ZScore, get_preset
from ecg_data.torch_datasets import CachedECGDataset


def test_float16_cache_is_half_the_size_and_close_to_float32(fake_reader, fake_ids) -> None:
    f32 = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float32")
    f16 = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float16")
    assert f16.path != f32.path and "float16" in f16.path.name
    assert f16.signals.dtype == np.float16 and f16.storage == "float16" and f16.meta["storage"] == "float16"
    assert f16.signals.nbytes * 2 == f32.signals.nbytes
    assert f16.record_ids == f32.record_ids and f16.qc.equals(f32.qc)
    err = np.abs(f16.batch(range(len(f16))) - np.asarray(f32.signals)).max()
    assert 0 < err <= 2**-11  # min-max output in [0, 1]: half a float16 step below 1
    assert f16[3].dtype == np.float32 and f16[3].flags.writeable


def test_storage_auto_switches_to_float16_for_large_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_storage("auto", 99_999) == "float32" and resolve_storage("auto", 100_000) == "float16"
    assert resolve_storage("float16", 5) == "float16"
    with pytest.raises(ValueError, match="cache storage must be"):
        resolve_storage("int8", 5)


def test_auto_storage_builds_float16_above_the_threshold(fake_reader, fake_ids, monkeypatch) -> None:
    monkeypatch.setattr(cache_mod, "AUTO_FLOAT16_MIN_RECORDS", 5)
    assert build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False).storage == "float16"
    assert build_cache(fake_reader, fake_ids[:4], "raw100", workers=1, progress=False).storage == "float32"


def test_float32_key_is_the_key_from_before_storage_dtypes(fake_reader, fake_ids) -> None:
    """Old caches keep their directory (and so keep working); float16 gets its own."""
    preset = get_preset("melp")
    old_key = stable_hash({"format": 1, "reader": fake_reader.name, "version": fake_reader.version,
                           "fingerprint": fake_reader.fingerprint(), "preset": preset.key(),
                           "ids": stable_hash(fake_ids, n=32)}, n=20)  # fmt: skip
    assert cache_dir_for(fake_reader, fake_ids, preset).name == f"fake-melp-{old_key}"
    assert cache_dir_for(fake_reader, fake_ids, preset, storage="float16") != cache_dir_for(
        fake_reader, fake_ids, preset
    )


def test_old_cache_without_storage_in_meta_opens_as_float32(fake_reader, fake_ids) -> None:
    split = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False, storage="float32")
    meta = json.loads((split.path / "meta.json").read_text())
    del meta["storage"]  # as written before this option existed
    (split.path / "meta.json").write_text(json.dumps(meta))
    reopened = CachedSplit.open(split.path)
    assert reopened.storage == "float32" and np.array_equal(reopened[0], split[0])


def test_inconsistent_or_newer_cache_is_a_clear_error(fake_reader, fake_ids) -> None:
    split = build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False, storage="float32")
    meta = json.loads((split.path / "meta.json").read_text())
    (split.path / "meta.json").write_text(json.dumps({**meta, "storage": "float16"}))
    with pytest.raises(CacheError, match="delete the directory to rebuild"):
        CachedSplit.open(split.path)
    (split.path / "meta.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(CacheError, match="newer than this ecg-data reads"):
        CachedSplit.open(split.path)


def test_float16_overflow_is_a_counted_skip_not_an_inf(fake_reader, fake_ids, monkeypatch) -> None:
    real_read = fake_reader.read

    def loud(rid: str):
        rec = real_read(rid)
        if rid == "2":
            rec.signal[0, 0] = 1e6  # mV far beyond float16's 65504
        return rec

    monkeypatch.setattr(fake_reader, "read", loud)
    split = build_cache(fake_reader, fake_ids, "raw500", workers=1, progress=False, storage="float16")
    assert "2" not in split.record_ids and np.isfinite(np.asarray(split.signals, np.float32)).all()
    row = split.qc.set_index("record_id").loc["2"]
    assert row["reason"].startswith("value out of float16 range")
    assert split.meta["summary"]["skipped_by_reason"]["value out of float16 range"] == 1


@pytest.mark.parametrize("name", ["melp", "merl", "esi"])
def test_device_normalisation_shares_the_raw500_cache_and_matches_baked(fake_reader, fake_ids, name) -> None:
    baked = build_cache(fake_reader, fake_ids, name, workers=1, progress=False, storage="float32")
    deferred = build_cache(
        fake_reader, fake_ids, name, workers=1, progress=False, storage="float32", normalize="device"
    )
    raw = build_cache(fake_reader, fake_ids, "raw500", workers=1, progress=False, storage="float32")
    assert deferred.path == raw.path  # one stored cache for melp, merl and esi
    assert deferred.normalizer is get_preset(name).transforms[-1]
    got = deferred.batch(range(len(deferred)))
    np.testing.assert_allclose(got, np.asarray(baked.signals), rtol=0, atol=2e-5)
    ds = CachedECGDataset(deferred)  # the per-item dataset normalises too
    np.testing.assert_allclose(ds[4]["ecg"].numpy(), baked[4], rtol=0, atol=2e-5)


def test_device_normalisation_is_a_no_op_for_presets_without_one(fake_reader, fake_ids) -> None:
    a = build_cache(fake_reader, fake_ids, "heartlang", workers=1, progress=False, normalize="device")
    b = build_cache(fake_reader, fake_ids, "heartlang", workers=1, progress=False)
    assert a.path == b.path and a.normalizer is None
    with pytest.raises(ValueError, match="normalize must be"):
        build_cache(fake_reader, fake_ids, "melp", normalize="gpu")


@pytest.mark.parametrize(
    "norm",
    [MinMaxNormalize(eps=1e-8), MinMaxNormalize(), ZScore("record", 1e-6, 1), ZScore("lead"), ZScore("lead", 0.0, 1)],
)
def test_torch_batch_normaliser_equals_the_numpy_transform(norm) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 12, 700)) * 3 + 1).astype(np.float32)
    x[1] = 2.5  # constant record
    x[2, 4] = -1.0  # constant lead
    want = np.stack([norm(r, 500)[0] for r in x])
    got = norm.batch(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert np.isfinite(got).all()
