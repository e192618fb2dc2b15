"""Dropout whose CPU mask costs half of torch's: the same Bernoulli distribution from integer draws.

Why our own: on CPU, torch's dropout draws its mask with ``bernoulli_`` (28-38 ms for MELP's (4, 12, 312, 312)
attention map on 2 cores, the largest non-matmul cost of the paper-size step: 8% of it), and
``scaled_dot_product_attention`` with dropout falls back to its math kernel, which adds a masked-row check
(``isneginf``/``all``/``where``) on every map. Drawing 31-bit integers with ``random_`` (mt19937, ~12 ms for the
same map) and keeping those >= ``round(p * 2**31)`` gives keep-probability ``1 - p`` to within 2**-31 and the
usual ``1 / (1 - p)`` scale: the same model, a different random stream (so not the same masks as torch's under one
seed). docs/performance.md has the measurements.

On other devices (CUDA's dropout and fused attention already draw with Philox inside the kernel), under
``torch.compile`` and in eval mode, everything here is exactly torch's own dropout / SDPA. ``set_fast_cpu_dropout``
switches a whole model (the trainer's ``perf.fast_cpu_dropout``); modules built with torch's ``nn.Dropout``
(Hugging Face BERT, the baselines) are swapped for :class:`FastCPUDropout` and back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_SPAN = 2**31  # ``random_`` on int32 draws uniformly from [0, 2**31)


def _fast_applies(x: torch.Tensor, p: float, training: bool) -> bool:
    return training and 0.0 < p < 1.0 and x.device.type == "cpu" and not torch.compiler.is_compiling()


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """Boolean mask, True with probability ``1 - p`` (to within 2**-31), from the default CPU generator."""
    return torch.empty(shape, dtype=torch.int32).random_() >= round(p * _SPAN)


class _MaskedScale(torch.autograd.Function):
    """``where(keep, x, 0) * scale`` with the boolean mask saved (1 byte per element) for the backward; ``where``
    rather than ``x * keep``, which casts the mask to float first (1.6x slower on a 37 MB attention map)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True, fast: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with the integer-draw mask on CPU when ``fast``."""
    if not (fast and _fast_applies(x, p, training)):
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, keep_mask(x.shape, p), 1.0 / (1.0 - p))


def math_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = True,
    fast: bool = True,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(QK^T / sqrt(d)) (boolean ``attn_mask``: True = may attend), :func:`dropout`, then V: the math
    kernel SDPA falls back to on CPU with dropout, written out."""
    att = (q * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if attn_mask is not None:
        att = att.masked_fill(~attn_mask, float("-inf"))
    return dropout(att.softmax(dim=-1), dropout_p, training, fast) @ v


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    fast: bool = True,
    scale: float | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention``; on CPU with dropout and ``fast``, :func:`math_attention` with the
    integer-draw mask."""
    if not (fast and _fast_applies(q, dropout_p, True)):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
    return math_attention(q, k, v, attn_mask, dropout_p, scale=scale)


class FastCPUDropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, ``inplace`` ignored: the mask is applied out of place) with the CPU mask above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def set_fast_cpu_dropout(module: nn.Module, enabled: bool) -> int:
    """Switch every dropout in ``module`` to the integer-draw CPU mask (``enabled``) or back to torch's.

    ``nn.Dropout`` children become :class:`FastCPUDropout` and back (no parameters or buffers: state dicts are
    unchanged); modules with a ``fast_cpu_dropout`` flag (our attention layers) get it set. Returns how many
    dropouts were switched."""
    n = 0
    for parent in module.modules():
        if isinstance(getattr(parent, "fast_cpu_dropout", None), bool):
            parent.fast_cpu_dropout = enabled
            n += 1
        for name, child in list(parent.named_children()):
            swap = (
                FastCPUDropout
                if enabled and type(child) is nn.Dropout
                else nn.Dropout
                if not enabled and type(child) is FastCPUDropout
                else None
            )
            if swap is not None:
                parent._modules[name] = swap(child.p, child.inplace).train(child.training)
                n += 1
    return n
