"""Worker for the 2-process gloo DDP equivalence test (a plain module so spawned children can import it)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from ecg_text_align.losses import LogitScale, clip_loss


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ecg = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.scale = LogitScale()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return clip_loss(self.ecg(x), self.text(t), self.scale())


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(8, 6, generator=g), torch.randn(8, 5, generator=g)


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(Pair())
        x, t = data()
        n = x.shape[0] // world
        loss = model(x[rank * n : (rank + 1) * n], t[rank * n : (rank + 1) * n])
        loss.backward()
        torch.save({"loss": loss.detach(), "grads": grads(model.module)}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
