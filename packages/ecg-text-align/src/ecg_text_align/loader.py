"""A training DataLoader that resumes mid-epoch exactly (Lightning's stateful-dataloader interface).

Why: Lightning restarts a non-stateful loader from the beginning of the epoch after a mid-epoch resume,
so a run stopped after k steps and resumed would see different batches than an uninterrupted run. This
loader's order is a pure function of (seed, epoch) and it skips the batches already consumed. It also
shards across ranks itself (the trainer runs with ``use_distributed_sampler=False``), every rank taking
an equal number of samples so contrastive gathering sees equal shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ecg_text_align.distributed import rank, world_size


class _EpochSampler(Sampler[int]):
    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.skip = 0, 0

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        ws, r = world_size(), rank()
        per_rank = self.n // ws
        return order[r * per_rank : (r + 1) * per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.skip :])

    def __len__(self) -> int:
        # the full epoch: Lightning sizes every epoch from this and tracks the resumed position itself
        return self.n // world_size()


class ResumableLoader(DataLoader):
    """``DataLoader`` with ``state_dict``/``load_state_dict`` (epoch + batches consumed)."""

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True, **kw: Any):
        self._epoch_sampler = _EpochSampler(len(dataset), seed, shuffle)  # type: ignore[arg-type]
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
        if s.skip + self.batch_size > s.n // world_size():  # type: ignore[operator]  # epoch was finished
            s.epoch, s.skip = s.epoch + 1, 0
        self._restored = True
