"""Worker for the per-device DDP test (a plain module so spawned children can import it)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from ecg_text_align.losses import clip_loss, local_alignment_loss


class Towers(nn.Module):
    """Beats (B, Q, d) and sentences (B, S, d) from two linear maps; rhythm / report = their means."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ecg = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor, t: torch.Tensor, part: str) -> torch.Tensor:
        beats, sents = self.ecg(x), self.text(t)
        if part == "local":
            return local_alignment_loss(beats, sents, torch.ones(t.shape[:2], dtype=torch.bool))
        return clip_loss(beats.mean(1), sents.mean(1), torch.tensor(10.0))


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(8, 3, 6, generator=g), torch.randn(8, 2, 5, generator=g)


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def worker(rank: int, world: int, port: int, out: str, part: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(Towers())
        x, t = data()
        n = x.shape[0] // world
        model(x[rank * n : (rank + 1) * n], t[rank * n : (rank + 1) * n], part).backward()
        torch.save(grads(model.module), f"{out}/{part}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()
