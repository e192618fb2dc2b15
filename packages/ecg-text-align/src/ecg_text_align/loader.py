"""A training DataLoader that resumes mid-epoch exactly (Lightning's stateful-dataloader interface).

Why: Lightning restarts a non-stateful loader from the beginning of the epoch after a mid-epoch resume,
so a run stopped after k steps and resumed would see different batches than an uninterrupted run. This
loader's order is a pure function of (seed, epoch) and it skips the batches already consumed. It also
shards across ranks itself (the trainer runs with ``use_distributed_sampler=False``), every rank taking
an equal number of samples so contrastive gathering sees equal shapes. Sharding is by *global batch*:
global batch g is ``order[g*W*B : (g+1)*W*B]`` and rank r takes its r-th block of B, so the batch gathered
over W ranks (in rank order) is exactly the batch one process with batch W*B would see at that step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ecg_text_align.distributed import rank, world_size


class _EpochSampler(Sampler[int]):
    def __init__(self, n: int, seed: int, shuffle: bool, batch_size: int = 1):
        self.n, self.seed, self.shuffle, self.batch_size = n, seed, shuffle, max(1, int(batch_size))
        self.epoch, self.skip = 0, 0

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        ws, r, b = world_size(), rank(), self.batch_size
        if ws == 1:
            return order
        step = ws * b
        full = (self.n // step) * step  # whole global batches only: every rank the same number of batches
        return [i for g in range(0, full, step) for i in order[g + r * b : g + (r + 1) * b]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.skip :])

    def __len__(self) -> int:
        # the full epoch: Lightning sizes every epoch from this and tracks the resumed position itself
        ws = world_size()
        return self.n if ws == 1 else (self.n // (ws * self.batch_size)) * self.batch_size


class ResumableLoader(DataLoader):
    """``DataLoader`` with ``state_dict``/``load_state_dict`` (epoch + batches consumed)."""

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True, **kw: Any):
        self._epoch_sampler = _EpochSampler(len(dataset), seed, shuffle, batch_size)  # type: ignore[arg-type]
        kw.setdefault("drop_last", True)
        super().__init__(dataset, batch_size=batch_size, sampler=self._epoch_sampler, **kw)
        self._consumed = 0  # batches handed out in the current epoch (incl. skipped ones)
        self._restored = False

    def __iter__(self) -> Iterator[Any]:
        s = self._epoch_sampler
        if self._restored:
            self._restored = False
        else:
            if self._consumed or s.skip:  # a fresh pass after a previous one: next epoch
                s.epoch += 1
            s.skip, self._consumed = 0, 0
        self._consumed = s.skip // self.batch_size  # type: ignore[operator]
        for batch in super().__iter__():
            self._consumed += 1
            yield batch
        self._consumed = max(self._consumed, 1)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch_sampler.epoch, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        s = self._epoch_sampler
        s.epoch, s.skip = int(state["epoch"]), int(state["consumed"]) * self.batch_size  # type: ignore[operator]
        if s.skip + self.batch_size > len(s):  # type: ignore[operator]  # epoch was finished
            s.epoch, s.skip = s.epoch + 1, 0
        self._restored = True
