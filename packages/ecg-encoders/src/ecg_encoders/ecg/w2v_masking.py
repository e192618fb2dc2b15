"""Span masking of wav2vec 2.0 (§3.1): sample span starts with probability ``mask_prob`` /
``mask_length`` per step, mask ``mask_length`` steps from each; every row ends with the same count.

Same algorithm as fairseq ``compute_mask_indices`` (overlapping spans, "static" lengths by default),
written against an explicit ``numpy.random.Generator`` so runs are reproducible per seed.
"""

from __future__ import annotations

import numpy as np
import torch


def _span_lengths(rng: np.random.Generator, n: int, mask_length: int, mask_type: str, mask_other: float) -> np.ndarray:
    if mask_type == "static":
        return np.full(n, mask_length)
    if mask_type == "uniform":
        return rng.integers(int(mask_other), mask_length * 2 + 1, size=n)
    if mask_type == "normal":
        return np.maximum(1, np.round(rng.normal(mask_length, mask_other, size=n))).astype(int)
    if mask_type == "poisson":
        return np.round(rng.poisson(mask_length, size=n)).astype(int)
    raise ValueError(f"unknown mask selection {mask_type!r}; valid: static, uniform, normal, poisson")


def compute_mask_indices(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    *,
    mask_type: str = "static",
    mask_other: float = 0.0,
    min_masks: int = 2,  # TransformerModel.apply_mask passes min_masks=2
    padding_mask: np.ndarray | torch.Tensor | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Boolean (B, N) mask, True = masked; the same number of masked steps in every row."""
    rng = rng if rng is not None else np.random.default_rng()
    bsz, all_sz = shape
    if all_sz < 2:
        raise ValueError(f"cannot mask a sequence of {all_sz} steps")
    mask = np.zeros((bsz, all_sz), dtype=bool)
    pad = None if padding_mask is None else np.asarray(padding_mask, dtype=bool)
    idcs = []
    for i in range(bsz):
        sz = all_sz - int(pad[i].sum()) if pad is not None else all_sz
        # probabilistic rounding of the expected number of spans
        num = max(min_masks, int(mask_prob * sz / float(mask_length) + rng.random()))
        lengths = _span_lengths(rng, num, mask_length, mask_type, mask_other)
        if lengths.sum() == 0:
            lengths[0] = min(mask_length, sz - 1)
        min_len = int(lengths.min())
        if sz - min_len <= num:
            min_len = sz - num - 1
        num = min(num, max(sz - min_len, 1))
        starts = rng.choice(max(sz - min_len, 1), num, replace=False)
        idc = np.concatenate([s + np.arange(l) for s, l in zip(starts, lengths[:num], strict=True)])
        idcs.append(np.unique(idc[idc < sz]))
    keep = min(len(m) for m in idcs)
    for i, idc in enumerate(idcs):
        if len(idc) > keep:
            idc = rng.choice(idc, keep, replace=False)
        mask[i, idc] = True
    return mask
