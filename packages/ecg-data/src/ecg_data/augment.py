"""Random lead masking, the project's one implementation: ``random_lead_mask`` (and ``RandomLeadMask`` in
``ecg_data.preprocess``, its callable form for dataset transforms and ``loader.finish_batch``).

Two ways to draw the keep-mask, one function. With ``key`` (training): keyed by record, so the same record at
the same step gets the same mask wherever it lands. Why keyed by (key, record row, lead) rather than drawn from a generator by batch position: under DDP the
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


def random_lead_mask(
    x: torch.Tensor,
    p: float,
    generator: torch.Generator | None = None,
    *,
    rows: torch.Tensor | None = None,
    key: int | None = None,
) -> torch.Tensor:
    """Zero each lead of each record independently with probability ``p``; returns a new tensor.

    ``x``: (12, T) or (B, 12, T) on any device. With ``key``: the draw is ``uniform_keyed(key, rows, 12)``
    (``rows`` (B,) identify the records, e.g. the batch's cache rows; default their positions), computed on
    ``x``'s device. Without: ``torch.rand`` from ``generator`` (on the generator's device; the global RNG when
    None), moved to ``x``'s device."""
    from ecg_data.record import LEADS

    if x.ndim not in (2, 3) or x.shape[-2] != len(LEADS):
        raise ValueError(f"lead mask expects (12, T) or (B, 12, T), got {tuple(x.shape)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"lead mask p must be in [0, 1], got {p}")
    if key is not None:
        if p <= 0:
            return x
        xb = x if x.ndim == 3 else x[None]
        ids = torch.arange(xb.shape[0]) if rows is None else torch.as_tensor(rows).reshape(-1)
        if ids.shape[0] != xb.shape[0]:
            raise ValueError(f"lead mask: {ids.shape[0]} row ids for a batch of {xb.shape[0]} records")
        keep = uniform_keyed(key, ids.to(x.device), xb.shape[1]) >= p
        out = xb * keep.unsqueeze(-1).to(x.dtype)
        return out if x.ndim == 3 else out[0]
    gen_device = generator.device if generator is not None else x.device
    keep = torch.rand(tuple(x.shape[:-1]), generator=generator, device=gen_device) >= p
    return x * keep.to(x.device, non_blocking=True).unsqueeze(-1).to(x.dtype)
