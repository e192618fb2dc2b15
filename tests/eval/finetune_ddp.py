"""Worker for the 2-process gloo fine-tuning test (a plain module so spawned children can import it)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Linear(16, 8)
        self.blocks = nn.ModuleList([nn.Linear(8, 4)])

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[0](torch.relu(self.stem(x[:, 0, :])))


def data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.stack([np.arange(n) % 2, (np.arange(n) // 2) % 2], axis=1).astype(np.float32)
    x = rng.normal(size=(n, 12, 16)).astype(np.float32)
    x[:, 0, 0] += 3 * y[:, 0]
    return x, y


def worker(rank: int, world: int, port: int, out: str) -> None:
    from ecg_eval.finetune import FinetuneConfig, fit_finetune

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = data()
        xv, yv = data(16, seed=1)
        fit = fit_finetune(
            Net(),
            x,
            np.arange(len(x)),
            y,
            xv,
            np.arange(len(xv)),
            yv,
            config=FinetuneConfig(lr=0.05, max_epochs=3, batch_size=8, patience=3, device="cpu"),
        )
        torch.save(
            {"state": fit.model.state_dict(), "history": fit.history, "best": fit.best_epoch},
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()
