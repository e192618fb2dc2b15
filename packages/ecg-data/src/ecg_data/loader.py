"""The training loader over the record cache: index batches per rank, one gather per batch, finish on the device.

Why not ``DataLoader(CachedECGDataset(...), batch_size=B)``: that fetches B items, converts each to
float32 and stacks them on the CPU, and with workers every batch is copied once more into shared
memory; measured on a 2-core machine, 2 workers were 7x *slower* than none. Here

- ``ShardedBatchSampler`` hands out whole index batches for one rank (``DistributedSampler``'s
  shuffling and sharding: same permutation on every rank from ``seed + epoch``, rank ``r`` takes
  every ``world_size``-th index), with an exact resume position (epoch, batches done);
- ``CachedBatchDataset[rows]`` does one gather of those rows from the memmap, in the stored dtype
  (float16 for large caches: half the bytes). In a worker it gathers into one of a small ring of
  shared-memory buffers that it reuses: measured here, allocating a fresh shared-memory batch per
  step (what ``default_collate`` does in workers) runs at ~700 samples/s against ~6,000-13,000/s for a
  gather into an existing buffer, because every new segment is created, zero-filled, mapped in both
  processes and unmapped again; a reused segment is mapped once (torch caches the mapping);
- ``make_loader`` wires them into a ``ResumableBatchLoader`` (a ``DataLoader`` with ``batch_size=None``:
  the sampler already batches; exact mid-epoch resume through ``state_dict``) with pinned memory when a
  GPU is present;
- ``to_device`` / ``finish_batch`` copy with ``non_blocking=True`` and then, on the device, convert to
  float32, normalise (caches built with ``normalize="device"``) and apply ``RandomLeadMask``.

Under Lightning with DDP, pass ``use_distributed_sampler=False`` to the ``Trainer``: this sampler
already shards by rank (Lightning would otherwise wrap it in a second ``DistributedSampler``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ecg_data.cache import CachedSplit


def _dist_rank_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardedBatchSampler(Sampler[list[int]]):
    """Index batches of one rank, reshuffled per epoch, resumable at an exact batch.

    Sharding follows ``torch.utils.data.DistributedSampler``: a permutation of ``range(n)`` seeded with
    ``seed + epoch`` (identical on all ranks), cut (``drop_last``) or padded by repeating its head to a
    multiple of ``world_size``; rank ``r`` takes positions ``r, r + world_size, ...``. Batches are
    consecutive runs of ``batch_size`` of these, each sorted so the gather reads the file forward.
    With ``drop_last`` every rank gets the same number of full batches (no rank waits in a collective).
    """

    def __init__(
        self, n: int, batch_size: int, *, rank: int | None = None, world_size: int | None = None,
        shuffle: bool = True, seed: int = 0, drop_last: bool = True,
    ) -> None:  # fmt: skip
        if n <= 0 or batch_size <= 0:
            raise ValueError(f"ShardedBatchSampler needs n > 0 and batch_size > 0, got n={n}, batch_size={batch_size}")
        d_rank, d_world = _dist_rank_world()
        self.rank = d_rank if rank is None else int(rank)
        self.world_size = d_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, world_size={self.world_size})")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.epoch = 0
        self.epoch_was_set = False  # set_epoch called since the last pass began
        self._start = 0  # batches of the current epoch to skip on the next __iter__ (resume)
        per_rank = n // self.world_size if drop_last else math.ceil(n / self.world_size)
        if per_rank == 0:
            raise ValueError(f"{n} records cannot be shared by {self.world_size} ranks with drop_last")
        self.per_rank = per_rank
        self.batches_per_epoch = per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(f"{per_rank} records per rank make no full batch of {batch_size} (drop_last)")

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch (as with ``DistributedSampler``) so every epoch has its own order
        (``ResumableBatchLoader`` advances the epoch itself on each new pass when nobody called this)."""
        self.epoch = int(epoch)
        self.epoch_was_set = True

    def rank_indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, in order (before batching)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.n, generator=g).numpy()
        else:
            perm = np.arange(self.n)
        total = self.per_rank * self.world_size
        if total <= self.n:
            perm = perm[:total]
        else:
            perm = np.resize(perm, total)  # repeats the head, as DistributedSampler pads
        return perm[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        mine, start, self._start = self.rank_indices(), self._start, 0
        for b in range(start, self.batches_per_epoch):
            yield np.sort(mine[b * self.batch_size : (b + 1) * self.batch_size]).tolist()

    def __len__(self) -> int:
        return self.batches_per_epoch - self._start

    def state_dict(self, batches_done: int) -> dict[str, Any]:
        """The resume position after ``batches_done`` batches of the current epoch were consumed.

        Why the caller passes the count: with workers, the DataLoader draws batches ahead of training, so
        only the consumer knows how many were used (e.g. ``global_step`` within the epoch).
        """
        return {"epoch": self.epoch, "batches_done": int(batches_done), "seed": self.seed, "n": self.n,
                "batch_size": self.batch_size, "world_size": self.world_size, "shuffle": self.shuffle,
                "drop_last": self.drop_last}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next ``__iter__`` continues at the saved batch of the saved epoch (later epochs from 0)."""
        mine = self.state_dict(0)
        for k in ("seed", "n", "batch_size", "world_size", "shuffle", "drop_last"):
            if state.get(k) != mine[k]:
                raise ValueError(f"cannot resume: saved {k}={state.get(k)!r} but this sampler has {mine[k]!r} "
                                 "(the batch position is only exact for the same data, batch size and ranks)")  # fmt: skip
        self.epoch = int(state["epoch"])
        done = int(state["batches_done"])
        if not 0 <= done <= self.batches_per_epoch:
            raise ValueError(f"cannot resume at batch {done}: an epoch has {self.batches_per_epoch}")
        self._start = done


#: Shared-memory batch buffers per worker = prefetch_factor + this; the slack is how many batches a consumer
#: may still hold (besides the current one) before a worker writes into its buffer again.
BUFFER_SLACK = 2


class _BufferRing:
    """A worker's reusable shared-memory batch buffers, handed out round-robin (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self.size, self.k = size, 0
        self.bufs: dict[tuple[tuple[int, ...], torch.dtype], list[torch.Tensor]] = {}

    def next(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        ring = self.bufs.setdefault((shape, dtype), [])
        if len(ring) < self.size:
            ring.append(torch.empty(shape, dtype=dtype).share_memory_())
        buf = ring[self.k % len(ring)]
        self.k += 1
        return buf


class CachedBatchDataset(Dataset):
    """``ds[rows]`` = one batch ``{"ecg": (B, 12, L) stored dtype, "report": list[str], "index": (B,), "labels"}``.

    One gather from the memmap per batch; no per-item conversion: float16 stays float16 until the device
    (``finish_batch``). Pickles without the memmap: each worker maps the file on first access.
    """

    def __init__(
        self, split: CachedSplit, labels: np.ndarray | None = None, buffers: int = 2 + BUFFER_SLACK,
        rows: Sequence[int] | None = None,
    ) -> None:  # fmt: skip
        self.path = split.path
        #: cache rows this dataset draws from (e.g. records with a report); positions 0..len-1 map to them
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows is not None and len(self.rows) and not (0 <= self.rows.min() and self.rows.max() < len(split)):
            raise ValueError(f"rows must index the cache's {len(split)} rows")
        self.buffers = buffers
        self._ring: _BufferRing | None = None
        self.n = len(split)
        self.normalizer = split.normalizer
        self.reports = ["" if r is None else str(r) for r in split.index["report"]]
        self.labels: torch.Tensor | None = None
        if labels is not None:
            lab = np.array(labels, dtype=np.float32)
            if lab.ndim != 2 or lab.shape[0] != self.n:
                raise ValueError(f"labels must be (N={self.n}, C), got {lab.shape} for cache {self.path}")
            self.labels = torch.from_numpy(lab)
        self._signals: np.ndarray | None = split.signals

    @property
    def signals(self) -> np.ndarray:
        if self._signals is None:
            self._signals = np.load(self.path / "signals.npy", mmap_mode="r")
        return self._signals

    def __len__(self) -> int:
        return self.n if self.rows is None else len(self.rows)

    def __getitem__(self, positions: Sequence[int]) -> dict[str, Any]:
        sig = self.signals
        pos = np.asarray(positions, dtype=np.int64)
        idx = torch.as_tensor(pos if self.rows is None else self.rows[pos])
        with warnings.catch_warnings():  # read-only memmap: only read here (index_select copies)
            warnings.simplefilter("ignore", UserWarning)
            src = torch.from_numpy(sig)
        if get_worker_info() is None:
            out = torch.index_select(src, 0, idx)
        else:  # into a reused shared-memory buffer (a fresh segment per batch is ~10x slower, measured)
            if self._ring is None:
                self._ring = _BufferRing(self.buffers)
            out = self._ring.next((len(idx), *sig.shape[1:]), src.dtype)
            torch.index_select(src, 0, idx, out=out)
        batch: dict[str, Any] = {"ecg": out, "report": [self.reports[i] for i in idx.tolist()], "index": idx}
        if self.labels is not None:
            batch["labels"] = self.labels[idx]
        return batch

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_signals"] = None
        state["_ring"] = None
        return state


class ResumableBatchLoader(DataLoader):
    """A ``DataLoader`` over a ``ShardedBatchSampler`` that resumes mid-epoch exactly (Lightning's stateful loader).

    Why: Lightning restarts a loader without ``state_dict`` at the beginning of the epoch after a resume, so a run
    stopped after k steps would see other batches than an uninterrupted one. Here ``state_dict()`` is the
    sampler's position after the batches this loader has *yielded* (counted in the consumer, so batches that
    workers fetched ahead are not lost), and a restored position wins over Lightning's ``set_epoch`` call.
    Each new pass is the next epoch, unless ``sampler.set_epoch`` was called before it (as Lightning does).

    ``batched=True``: the dataset takes a list of rows and returns the batch (``CachedBatchDataset``, one gather);
    ``False``: a map-style dataset of items, collated by ``collate_fn`` (e.g. tokenised reports).
    """

    def __init__(self, dataset: Dataset, sampler: ShardedBatchSampler, *, batched: bool, **kw: Any) -> None:
        if batched:
            super().__init__(dataset, sampler=sampler, batch_size=None, **kw)
        else:
            super().__init__(dataset, batch_sampler=sampler, **kw)
        self.batches = sampler
        self._consumed = 0
        self._started = False
        self._restored: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        s = self.batches
        if self._restored is not None:
            s.load_state_dict(self._restored)  # again: Lightning may have called set_epoch after our restore
            self._restored = None
        elif self._started and not s.epoch_was_set:
            s.epoch += 1
        s.epoch_was_set, self._started = False, True
        self._consumed = s._start
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def __len__(self) -> int:
        # the full epoch: Lightning sizes every epoch from this and counts a resumed epoch's done batches itself
        return self.batches.batches_per_epoch

    def state_dict(self) -> dict[str, Any]:
        return self.batches.state_dict(self._consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if int(state["batches_done"]) >= self.batches.batches_per_epoch:  # the saved epoch was finished
            state["epoch"], state["batches_done"] = int(state["epoch"]) + 1, 0
        self.batches.load_state_dict(state)
        self._restored = state


def make_loader(
    split: CachedSplit, batch_size: int, *, labels: np.ndarray | None = None, rank: int | None = None,
    world_size: int | None = None, shuffle: bool = True, seed: int = 0, drop_last: bool = True,
    num_workers: int = 0, pin_memory: bool | None = None, prefetch_factor: int | None = None,
    rows: Sequence[int] | None = None,
) -> ResumableBatchLoader:  # fmt: skip
    """A DataLoader of whole batches for this rank (see the module docstring), resumable (``state_dict``).

    ``rows``: draw only these cache rows (e.g. the records with a report); batches give cache row numbers
    as ``index``. ``pin_memory`` defaults to whether CUDA is available (pinned pages make ``non_blocking`` copies real).
    With workers and without pinning, a batch's ``ecg`` lives in a reused buffer: it stays valid while the
    consumer holds at most ``BUFFER_SLACK`` earlier batches; ``.clone()`` a batch to keep it longer.
    """
    dataset = CachedBatchDataset(split, labels, buffers=(prefetch_factor or 2) + BUFFER_SLACK, rows=rows)
    sampler = ShardedBatchSampler(len(dataset), batch_size, rank=rank, world_size=world_size, shuffle=shuffle,
                                  seed=seed, drop_last=drop_last)  # fmt: skip
    extra: dict[str, Any] = {}
    prefetch = prefetch_factor or 2
    if num_workers > 0:
        extra = {"persistent_workers": True, "prefetch_factor": prefetch}
    return ResumableBatchLoader(
        dataset, sampler, batched=True, num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory, **extra,
    )  # fmt: skip


def finish_batch(
    batch: dict[str, Any],
    *,
    normalizer: Any = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    raw_augment: Callable[[dict[str, Any], torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """On the batch's device: ``ecg`` to float32, then ``raw_augment(batch, x)`` (an augmentation defined on the
    signal before normalisation, e.g. ESI's jitter in millivolts), the deferred normalisation, then ``augment``."""
    x = batch["ecg"].float()
    if raw_augment is not None:
        x = raw_augment(batch, x)
    if normalizer is not None:
        x = normalizer.batch(x)
    if augment is not None:
        x = augment(x)
    return {**batch, "ecg": x}


def to_device(
    batch: dict[str, Any],
    device: torch.device | str,
    *,
    normalizer: Any = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    non_blocking: bool = True,
    raw_augment: Callable[[dict[str, Any], torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Copy the tensors of a batch to ``device`` (non-blocking from pinned memory), then ``finish_batch`` there."""
    moved = {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return finish_batch(moved, normalizer=normalizer, augment=augment, raw_augment=raw_augment)


def item_loader(
    dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True, drop_last: bool = True,
    rank: int | None = None, world_size: int | None = None, num_workers: int = 0, **kw: Any,
) -> ResumableBatchLoader:  # fmt: skip
    """The same sharded, resumable loader for a map-style dataset of *items* (e.g. report texts for the
    language-model stage), collated per batch (``collate_fn`` in ``kw``): one sampler for every training loader."""
    sampler = ShardedBatchSampler(len(dataset), batch_size, rank=rank, world_size=world_size,  # type: ignore[arg-type]
                                  shuffle=shuffle, seed=seed, drop_last=drop_last)  # fmt: skip
    if num_workers > 0:
        kw.setdefault("persistent_workers", True)
    return ResumableBatchLoader(dataset, sampler, batched=False, num_workers=num_workers, **kw)
