"""DDP equivalence: 2 gloo ranks × 4 samples == 1 process × 8 samples (contrastive loss and gradients)."""

from __future__ import annotations

import socket

import pytest
import text_align_ddp as W
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ecg_text_align.distributed import gather_with_grad


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_rank_gloo_matches_single_process(tmp_path) -> None:
    mp.spawn(W.worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single = W.Pair()
    x, t = W.data()
    loss = single(x, t)
    loss.backward()
    ref = W.grads(single)
    for r in range(2):
        got = torch.load(tmp_path / f"rank{r}.pt")
        assert got["loss"].item() == pytest.approx(loss.item(), abs=1e-5)
        for k, g in ref.items():
            torch.testing.assert_close(got["grads"][k], g, atol=1e-5, rtol=0)
    # the test is not vacuous: a rank-local loss would differ
    local = W.Pair()(x[:4], t[:4])
    assert abs(local.item() - loss.item()) > 1e-3


def test_gather_is_identity_without_process_group() -> None:
    t = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(t) is t
