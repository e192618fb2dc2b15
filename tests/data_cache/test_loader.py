"""ecg_data.loader: rank sharding like DistributedSampler, exact resume, one gather per batch, workers
equal to no workers, and the device-side finish (float32, deferred normalisation, lead mask) run on CPU."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from ecg_data.cache import build_cache
from ecg_data.loader import CachedBatchDataset, ShardedBatchSampler, finish_batch, make_loader, to_device
from ecg_data.preprocess import RandomLeadMask, get_preset


@pytest.mark.parametrize("n,ws,drop_last", [(103, 4, True), (103, 4, False), (8, 3, False), (64, 1, True)])
def test_shards_follow_distributed_sampler(n: int, ws: int, drop_last: bool) -> None:
    for epoch in (0, 3):
        for rank in range(ws):
            ours = ShardedBatchSampler(n, 5, rank=rank, world_size=ws, seed=7, drop_last=drop_last)
            ours.set_epoch(epoch)
            ref = DistributedSampler(range(n), num_replicas=ws, rank=rank, shuffle=True, seed=7, drop_last=drop_last)
            ref.set_epoch(epoch)
            assert ours.rank_indices().tolist() == list(ref)


def test_ranks_are_disjoint_cover_the_data_and_have_equal_batch_counts() -> None:
    n, ws, bs = 1000, 8, 16
    samplers = [ShardedBatchSampler(n, bs, rank=r, world_size=ws, seed=1) for r in range(ws)]
    per_rank = [[i for b in s for i in b] for s in samplers]
    assert len({len(list(s)) for s in samplers}) == 1  # no rank waits for another in a collective
    flat = [i for p in per_rank for i in p]
    assert len(flat) == len(set(flat)) == (n // ws // bs) * bs * ws
    assert all(len(b) == bs and b == sorted(b) for s in samplers for b in s)


def test_epochs_reshuffle_and_the_seed_fixes_the_order() -> None:
    s = ShardedBatchSampler(50, 10, seed=3)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    s.set_epoch(0)
    assert list(s) == e0 == list(ShardedBatchSampler(50, 10, seed=3))
    assert list(ShardedBatchSampler(50, 10, shuffle=False)) == [list(range(i, i + 10)) for i in range(0, 50, 10)]


def test_resume_continues_at_the_exact_batch_then_next_epoch_from_the_start() -> None:
    full = ShardedBatchSampler(200, 8, rank=1, world_size=2, seed=5)
    full.set_epoch(2)
    epoch2 = list(full)
    state = full.state_dict(batches_done=4)
    resumed = ShardedBatchSampler(200, 8, rank=1, world_size=2, seed=5)
    resumed.load_state_dict(state)
    assert resumed.epoch == 2 and len(resumed) == len(epoch2) - 4
    assert list(resumed) == epoch2[4:]
    assert len(list(resumed)) == len(epoch2)  # the next pass is a whole epoch again
    with pytest.raises(ValueError, match="cannot resume: saved world_size=2"):
        ShardedBatchSampler(200, 8, rank=0, world_size=4, seed=5).load_state_dict(state)


def test_bad_sampler_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="rank 2 is not in"):
        ShardedBatchSampler(10, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="make no full batch"):
        ShardedBatchSampler(10, 8, world_size=2)


@pytest.fixture
def split16(fake_reader, fake_ids):
    return build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float16", normalize="device")


def test_batch_is_one_gather_in_the_stored_dtype(split16) -> None:
    ds = CachedBatchDataset(split16, labels=np.arange(16, dtype=np.float32).reshape(8, 2))
    b = ds[[1, 4, 6]]
    assert b["ecg"].dtype == torch.float16 and b["ecg"].shape == (3, 12, 5000)
    assert torch.equal(b["ecg"], torch.from_numpy(np.asarray(split16.signals[[1, 4, 6]])))
    assert b["index"].tolist() == [1, 4, 6] and b["labels"][:, 0].tolist() == [2.0, 8.0, 12.0]
    assert b["report"] == [split16.index["report"].iloc[i] or "" for i in (1, 4, 6)]
    assert len(pickle.dumps(ds)) < 20_000  # no memmap, no buffers in the pickle


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_deliver_the_same_batches_as_the_main_process(split16, workers: int) -> None:
    """Also with reused shared-memory buffers: batches held back (BUFFER_SLACK) are not overwritten."""
    ref = [{k: v.clone() if torch.is_tensor(v) else v for k, v in b.items()} for b in make_loader(split16, 2, seed=4)]
    loader = make_loader(split16, 2, seed=4, num_workers=workers)
    for _ in range(2):  # persistent workers: a second epoch reuses the buffers
        held = []
        for b in loader:
            held = (held + [b])[-3:]  # keep the current batch and two earlier ones, as a consumer may
            for h in held:
                r = ref[[x["index"][0].item() for x in ref].index(h["index"][0].item())]
                assert torch.equal(h["ecg"], r["ecg"]) and h["report"] == r["report"]
        loader.sampler.set_epoch(0)
    got = sorted(i for b in loader for i in b["index"].tolist())
    assert got == list(range(8))


def test_finish_on_the_device_equals_the_baked_cache(fake_reader, fake_ids, split16) -> None:
    baked = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float32")
    batch = next(iter(make_loader(split16, 8, shuffle=False)))
    out = to_device(batch, "cpu", normalizer=split16.normalizer)  # the GPU path, run on the CPU
    assert out["ecg"].dtype == torch.float32 and out["index"].tolist() == list(range(8))
    # float16 of raw millivolts, then min-max: within a float16 step of the record's range
    np.testing.assert_allclose(out["ecg"].numpy(), np.asarray(baked.signals), rtol=0, atol=2e-3)


def test_lead_mask_on_the_device_masks_whole_leads_with_a_cpu_generator(split16) -> None:
    batch = next(iter(make_loader(split16, 8, shuffle=False)))
    gen = torch.Generator().manual_seed(0)
    out = finish_batch(batch, normalizer=get_preset("melp").transforms[-1], augment=RandomLeadMask(0.5, generator=gen))
    lead_zero = (out["ecg"] == 0).all(dim=-1)
    lead_kept = (out["ecg"] != 0).any(dim=-1)
    assert (lead_zero | lead_kept).all() and 0.3 < lead_zero.float().mean() < 0.7
    assert batch["ecg"].dtype == torch.float16  # the input batch is not modified


def test_pin_memory_default_follows_cuda(split16) -> None:
    assert make_loader(split16, 4).pin_memory == torch.cuda.is_available()
    assert make_loader(split16, 4, pin_memory=False).pin_memory is False


def test_rows_restrict_the_loader_to_a_subset_of_the_cache(split16) -> None:
    keep = [0, 2, 3, 5, 7]  # e.g. the records with a report
    got = [i for b in make_loader(split16, 2, rows=keep, drop_last=False) for i in b["index"].tolist()]
    assert sorted(got) == keep
    b = CachedBatchDataset(split16, rows=keep)[[1, 4]]
    assert b["index"].tolist() == [2, 7] and torch.equal(
        b["ecg"], torch.from_numpy(np.asarray(split16.signals[[2, 7]]))
    )
    with pytest.raises(ValueError, match="rows must index"):
        CachedBatchDataset(split16, rows=[0, 8])


def test_resumable_loader_state_counts_consumed_batches_and_a_restore_wins_over_set_epoch(split16) -> None:
    """What Lightning does: state_dict after k batches, load into a fresh loader, set_epoch, iterate."""
    from ecg_data.loader import item_loader

    whole = [b["index"].tolist() for b in make_loader(split16, 2, seed=3)]
    loader = make_loader(split16, 2, seed=3)
    it = iter(loader)
    first = [next(it)["index"].tolist() for _ in range(2)]
    state = loader.state_dict()
    assert first == whole[:2] and state["batches_done"] == 2 and state["epoch"] == 0
    fresh = make_loader(split16, 2, seed=3)
    fresh.load_state_dict(state)
    fresh.sampler.set_epoch(0)  # Lightning sets the epoch before iterating; the restored position stays
    assert len(fresh) == len(whole)  # Lightning sizes the epoch from the full length
    assert [b["index"].tolist() for b in fresh] == whole[2:]
    assert [b["index"].tolist() for b in fresh] != whole  # the next pass is epoch 1 (advanced by the loader)
    assert fresh.sampler.epoch == 1
    # a state saved at the end of an epoch resumes at the start of the next one
    done = make_loader(split16, 2, seed=3)
    done.load_state_dict({**state, "batches_done": len(whole)})
    assert done.sampler.epoch == 1 and len(list(done)) == len(whole)
    # item datasets (e.g. texts) share the sampler: the same order of indices
    items = item_loader(list(range(len(split16))), 2, seed=3, collate_fn=lambda xs: xs)
    assert [sorted(b) for b in items] == whole


def test_keyed_lead_mask_depends_on_the_record_not_its_position() -> None:
    from ecg_data.augment import random_lead_mask, uniform_keyed

    def mask_leads(x, rows, p, key):
        return random_lead_mask(x, p, rows=rows, key=key)

    x = torch.ones(6, 12, 10)
    rows = torch.tensor([10, 3, 7, 42, 5, 0])
    a = mask_leads(x, rows, 0.5, key=123)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    b = mask_leads(x[perm], rows[perm], 0.5, key=123)
    assert torch.equal(a[perm], b)  # same record, same mask, wherever it sits in the batch
    assert torch.equal(a[:3], mask_leads(x[:3], rows[:3], 0.5, key=123))  # a rank's share = its rows of the whole
    assert not torch.equal(a, mask_leads(x, rows, 0.5, key=124))  # another step, other masks
    assert set(a.unique().tolist()) <= {0.0, 1.0} and bool((a == a[:, :, :1]).all())  # whole leads
    u = uniform_keyed(7, torch.arange(20_000), 12)
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float((u < 0.3).float().mean()) - 0.3) < 0.01  # the keep rate follows p
    assert torch.equal(mask_leads(x, rows, 0.0, key=1), x)
    with pytest.raises(ValueError, match="2 row ids for a batch of 6 records"):
        mask_leads(x, rows[:2], 0.5, key=1)


def test_a_split_indexes_like_an_array_of_normalised_float32_rows(fake_reader, fake_ids, split16) -> None:
    baked = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float32")
    rows = np.array([5, 1, 2])
    got = split16[rows]
    assert got.dtype == np.float32 and got.shape == (3, 12, 5000)
    np.testing.assert_allclose(got, np.asarray(baked.signals)[rows], rtol=0, atol=2e-3)
    np.testing.assert_allclose(split16[2:4], np.asarray(baked.signals)[2:4], rtol=0, atol=2e-3)
    assert split16[3].shape == (12, 5000)


def test_embeddings_of_a_device_normalised_cache_equal_those_of_the_baked_one(fake_reader, fake_ids, split16) -> None:
    """ecg-eval reads rows through the split, so a float16 prenorm cache is normalised before the encoder."""
    from ecg_eval.embeddings import encode_split

    class MeanEncoder(torch.nn.Module):
        def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x.mean(dim=(1, 2)), x.std(dim=(1, 2))], dim=1)

    baked = build_cache(fake_reader, fake_ids, "melp", workers=1, progress=False, storage="float32")
    a = encode_split(MeanEncoder(), baked.signals, len(baked), 3, progress=False)
    b = encode_split(MeanEncoder(), split16, len(split16), 3, progress=False)
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-3)
