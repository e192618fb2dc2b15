"""A train-fitted preset (heartlang-ptbxl's StandardScaler): fitted on the task's train split only, the same statistics
for every split, a key that follows the train split, and the cache of the chain before it shared (raw100)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ecg_data import cache as C
from ecg_data.cache import build_cache, cached_split, fit_key, resolve_preset
from ecg_data.preprocess import Standardize, get_preset


@dataclass
class _Task:
    """The three attributes ``cached_split`` / ``resolve_preset`` use of a task."""

    name: str
    splits: dict[str, list[str]]
    make_reader: Callable[[], Any]

    def reader(self) -> Any:
        return self.make_reader()


@pytest.fixture
def task(fake_root: Path, fake_reader: Any) -> _Task:
    C._FITTED.clear()  # no carry-over between tests in the process memo (each test has its own $ECG_CACHE)
    make = lambda: type(fake_reader)(fake_root)  # noqa: E731 -- a fresh FakeWFDBReader per call, as Task.reader()
    return _Task("fake_task", {"train": ["1", "2", "3", "7"], "val": ["4", "5"], "test": ["6", "8"]}, make)


def _pooled(x: np.ndarray) -> tuple[float, float]:
    v = x.astype(np.float64).ravel()
    return float(v.mean()), float(v.std())


def test_fitted_on_train_only_and_the_same_statistics_for_every_split(task: _Task) -> None:
    raw = {s: cached_split(task, s, "raw100", workers=1, progress=False) for s in task.splits}
    mean, std = _pooled(raw["train"].signals[:])
    for s in task.splits:
        split = cached_split(task, s, "heartlang-ptbxl", workers=1, progress=False)
        assert split.path == raw[s].path  # stored as raw100: one cache, the affine step per batch
        assert isinstance(split.normalizer, Standardize)
        assert (split.normalizer.mean, split.normalizer.std) == pytest.approx((mean, std), rel=1e-9)
        np.testing.assert_allclose(split[:], (raw[s].signals[:] - mean) / std, rtol=1e-5, atol=1e-5)
    train = cached_split(task, "train", "heartlang-ptbxl", workers=1, progress=False)[:]
    assert float(train.mean()) == pytest.approx(0.0, abs=1e-5) and float(train.std()) == pytest.approx(1.0, abs=1e-5)
    every = _pooled(np.concatenate([raw[s].signals[:] for s in task.splits]))  # what a fit on all splits would give
    assert abs(every[1] - std) > 1e-3 * std, (every, std)


def test_val_and_test_membership_do_not_move_the_statistics_train_does(task: _Task) -> None:
    base = resolve_preset(task, "heartlang-ptbxl", workers=1, progress=False)
    other_eval = _Task(task.name, {**task.splits, "val": ["6"], "test": ["4", "5", "8"]}, task.make_reader)
    same = resolve_preset(other_eval, "heartlang-ptbxl", workers=1, progress=False)
    assert same.key() == base.key() and same.transforms[-1] == base.transforms[-1]
    other_train = _Task(task.name, {**task.splits, "train": ["1", "2", "3", "8"]}, task.make_reader)
    moved = resolve_preset(other_train, "heartlang-ptbxl", workers=1, progress=False)
    assert fit_key(other_train, "heartlang-ptbxl") != fit_key(task, "heartlang-ptbxl")
    assert moved.key() != base.key()
    assert moved.transforms[-1].fitted_on != base.transforms[-1].fitted_on
    assert moved.transforms[-1].mean != base.transforms[-1].mean


def test_statistics_are_stored_beside_the_train_cache_and_read_back(task: _Task) -> None:
    first = resolve_preset(task, "heartlang-ptbxl", workers=1, progress=False)
    train = build_cache(task.reader(), task.splits["train"], "raw100", workers=1, progress=False)
    stats = list(train.path.glob("fitted-*.json"))
    assert [p.name for p in stats] == [f"fitted-{first.transforms[-1].fitted_on}.json"]
    C._FITTED.clear()
    stats[0].write_text(stats[0].read_text().replace('"n_values"', '"n_values_"'))  # still readable: mean/std only
    again = resolve_preset(task, "heartlang-ptbxl", workers=1, progress=False)
    assert again == first


def test_presets_without_a_fitted_step_are_untouched(task: _Task) -> None:
    assert resolve_preset(task, "heartlang") is get_preset("heartlang")
    a = cached_split(task, "val", "heartlang", workers=1, progress=False)
    assert a.normalizer is None and a.meta["preset"]["key"] == get_preset("heartlang").key()
    with pytest.raises(ValueError, match="train-fitted step"):
        build_cache(task.reader(), task.splits["val"], "heartlang-ptbxl", workers=1, progress=False)
    with pytest.raises(KeyError, match="no split 'train'"):
        fit_key(_Task("t", {"test": ["1"]}, task.make_reader), "heartlang-ptbxl")
