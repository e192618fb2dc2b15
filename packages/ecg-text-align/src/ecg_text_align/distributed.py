"""Cross-rank gathering for contrastive negatives.

Why our own autograd function: open_clip's ``gather_features(..., gather_with_grad=True)`` relies on
``torch.distributed.nn.all_gather``; we want the same semantics (every rank sees every rank's features,
gradients flow back to the local shard, summed over all ranks' losses) without depending on that module's
version-specific backward. With DDP averaging gradients over ranks, a loss computed identically on every
rank on the gathered batch then yields exactly the single-process gradient of the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ws = dist.get_world_size()
        ctx.rank = dist.get_rank()
        ctx.n = t.shape[0]
        parts = [torch.empty_like(t) for _ in range(ws)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Every rank computed a loss on the full gathered tensor; the local shard's gradient is the
        # sum of all ranks' gradients w.r.t. that shard (what reduce-scatter(sum) computes).
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """All ranks' ``t`` concatenated along dim 0 (rank order); identity when not distributed.

    Requires the same shape on every rank (training loaders use ``drop_last=True``); raises otherwise.
    """
    if world_size() == 1:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    ns = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(ns, n)
    if len({int(x.item()) for x in ns}) != 1:
        raise ValueError(
            f"gather_with_grad needs equal batch sizes on all ranks, got {[int(x.item()) for x in ns]}; "
            "use drop_last=True in the training DataLoader"
        )
    return _GatherWithGrad.apply(t)


# ----- which process am I? (before and after the process group exists) -----------------------------
def _env_int(name: str) -> int | None:
    import os

    v = os.environ.get(name, "").strip()
    return int(v) if v.lstrip("-").isdigit() else None


def launched_rank() -> int:
    """Global rank of this process as its launcher told it, also before a process group exists.

    torchrun sets ``RANK``; Lightning's own launcher gives its children ``LOCAL_RANK``/``NODE_RANK`` (and
    its rank-0 process gets them once it has launched them); SLURM ``srun`` sets ``SLURM_PROCID`` (only
    meaningful with more than one task). Without any of these: 0 (a plain single process).
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    r = _env_int("RANK")
    if r is not None:
        return r
    local = _env_int("LOCAL_RANK")
    if local is not None:
        node = _env_int("NODE_RANK") or _env_int("GROUP_RANK") or 0
        # only "is it rank 0" matters before the group exists: any non-zero local or node rank is not
        return local if node == 0 else node * 1_000_000 + local
    if (_env_int("SLURM_NTASKS") or 1) > 1:
        return _env_int("SLURM_PROCID") or 0
    return 0


def is_global_zero() -> bool:
    """True in the one process that evaluates, publishes and writes the run store's events and markers."""
    return launched_rank() == 0


def barrier() -> None:
    """``dist.barrier`` when a process group exists (after a DDP fit); a no-op in a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
