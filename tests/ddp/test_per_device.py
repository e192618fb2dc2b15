"""The parts that are per device by design (docs/pretraining.md), tested as such with 2 gloo processes:

- MELP's local beat-sentence loss takes its negatives from the rank's own batch: DDP's gradient is the mean of
  the per-half gradients, *not* the full-batch gradient;
- the CLIP loss gathers: DDP's gradient *is* the full-batch gradient.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ddp_worker as W  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single(part: str, halves: bool) -> dict[str, torch.Tensor]:
    model = W.Towers()
    x, t = W.data()
    if halves:  # the mean of the two ranks' losses, each on its own half
        loss = 0.5 * (model(x[:4], t[:4], part) + model(x[4:], t[4:], part))
    else:
        loss = model(x, t, part)
    loss.backward()
    return W.grads(model)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
@pytest.mark.parametrize("part,global_batch", [("local", False), ("clip", True)])
def test_which_losses_see_the_global_batch(part: str, global_batch: bool, tmp_path: Path) -> None:
    mp.spawn(W.worker, args=(2, _port(), str(tmp_path), part), nprocs=2, join=True)
    got = torch.load(tmp_path / f"{part}-rank0.pt")
    torch.testing.assert_close(torch.load(tmp_path / f"{part}-rank1.pt"), got)  # DDP: every rank the same
    full, per_half = _single(part, halves=False), _single(part, halves=True)
    expected, other = (full, per_half) if global_batch else (per_half, full)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=1e-5, rtol=0)
    assert any((got[k] - other[k]).abs().max() > 1e-4 for k in other), "the two references must differ"
