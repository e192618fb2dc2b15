"""CachedECGDataset: items per the contract, read from the memmap, picklable for DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecg_data.cache import build_cache
from ecg_data.preprocess import RandomLeadMask
from ecg_data.torch_datasets import CachedECGDataset


@pytest.fixture
def split(fake_reader, fake_ids):
    return build_cache(fake_reader, fake_ids, "raw100", workers=1, progress=False)


def test_items_follow_the_contract(split) -> None:
    labels = np.eye(8, 3, dtype=np.float32)
    ds = CachedECGDataset(split, labels=labels)
    assert len(ds) == 8
    item = ds[2]
    assert set(item) == {"ecg", "report", "labels", "index"}
    assert item["ecg"].shape == (12, 1000) and item["ecg"].dtype == torch.float32
    assert torch.equal(item["ecg"], torch.from_numpy(split[2]))
    assert item["report"] == "sinus rhythm. normal ecg" and item["index"] == 2
    assert torch.equal(item["labels"], torch.tensor([0.0, 0.0, 1.0]))
    assert ds[6]["report"] == ""  # record 7 has no report
    assert "labels" not in CachedECGDataset(split)[0]


def test_item_is_a_writable_copy_not_a_view_of_the_cache(split) -> None:
    ds = CachedECGDataset(split)
    item = ds[0]["ecg"]
    item.zero_()
    assert ds[0]["ecg"].abs().sum() > 0


def test_labels_shape_is_checked(split) -> None:
    with pytest.raises(ValueError, match=r"labels must be \(N=8, C\)"):
        CachedECGDataset(split, labels=np.zeros((7, 2)))


def test_pickles_without_the_memmap_and_reopens_lazily(split) -> None:
    ds = CachedECGDataset(split.path)
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # the signals are not in the pickle
    clone = pickle.loads(blob)
    assert clone._signals is None
    assert torch.equal(clone[5]["ecg"], ds[5]["ecg"]) and clone._signals is not None


def test_dataloader_with_workers_and_lead_mask_transform(split) -> None:
    ds = CachedECGDataset(split, labels=np.ones((8, 2), np.float32), transform=RandomLeadMask(1.0))
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=2)
    batches = list(loader)
    assert [b["ecg"].shape for b in batches] == [(4, 12, 1000)] * 2
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(8))
    assert all(not b["ecg"].any() for b in batches)  # p=1 masks every lead
    assert batches[0]["labels"].shape == (4, 2) and len(batches[0]["report"]) == 4


def test_batched_fetch_equals_item_fetch(split) -> None:
    ds = CachedECGDataset(split, labels=np.arange(16, dtype=np.float32).reshape(8, 2))
    items = ds.__getitems__([5, 0, 5, 3])
    for got, i in zip(items, [5, 0, 5, 3]):
        want = ds[i]
        assert torch.equal(got["ecg"], want["ecg"]) and torch.equal(got["labels"], want["labels"])
        assert got["report"] == want["report"] and got["index"] == i
    batch = torch.utils.data.default_collate(items)
    batch["ecg"].zero_()  # the collated batch is a copy: editing it never touches the cache
    assert ds[5]["ecg"].abs().sum() > 0
    masked = CachedECGDataset(split, transform=RandomLeadMask(0.0)).__getitems__([1])[0]["ecg"]
    masked.zero_()  # with a transform, items are writable copies
    assert ds[1]["ecg"].abs().sum() > 0
