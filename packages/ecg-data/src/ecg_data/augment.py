"""Random lead masking keyed by record: the same record at the same step gets the same mask wherever it lands.

Why keyed by (key, record row, lead) rather than drawn from a generator by batch position: under DDP the
loader splits each global batch across ranks (``ecg_data.loader.ShardedBatchSampler``) and sorts each
rank's rows for a forward read, so positions differ between W ranks x B and one process x W*B. A
position-drawn mask would then differ between the two runs; a keyed one does not, and a resumed run draws
the same masks. The draw is an integer hash computed with tensor ops, so it runs on the batch's device
(no CPU generator, no host-device copy) and costs O(B x leads), whatever the dataset size.
"""

from __future__ import annotations

import torch

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B1  # 2**32 / golden ratio: spreads the lead number before hashing
_MUL = 0x045D9F3B  # the multiplier of a well-known 32-bit integer finaliser (< 2**31: products fit in int64)


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash of int64 values in [0, 2**32) (three xor-shift-multiply rounds)."""
    x = ((x ^ (x >> 16)) * _MUL) & _M32
    x = ((x ^ (x >> 16)) * _MUL) & _M32
    return x ^ (x >> 16)


def uniform_keyed(key: int, rows: torch.Tensor, n_leads: int) -> torch.Tensor:
    """(B, n_leads) floats in [0, 1): a pure function of (key, row, lead), on ``rows``' device (rows < 2**32)."""
    rows = rows.to(torch.int64).reshape(-1, 1)
    leads = torch.arange(n_leads, device=rows.device, dtype=torch.int64).reshape(1, -1)
    k = _hash32(torch.tensor(int(key) & _M32, dtype=torch.int64, device=rows.device))
    h = _hash32(rows & _M32)
    h = _hash32((h + leads * _GOLDEN) & _M32)
    h = _hash32(h ^ k)
    return (h >> 8).to(torch.float32) / 2.0**24  # 24 bits: exact in float32, so strictly below 1


def mask_leads(x: torch.Tensor, rows: torch.Tensor, p: float, key: int) -> torch.Tensor:
    """Zero each lead of each record with probability ``p``; ``rows`` (B,) identify the records (cache rows).

    ``x``: (B, leads, T). Returns a new tensor (``x`` is not modified)."""
    if p <= 0:
        return x
    if rows.shape[0] != x.shape[0]:
        raise ValueError(f"mask_leads: {rows.shape[0]} row ids for a batch of {x.shape[0]} records")
    keep = uniform_keyed(key, rows.to(x.device), x.shape[1]) >= p
    return x * keep.unsqueeze(-1).to(x.dtype)
