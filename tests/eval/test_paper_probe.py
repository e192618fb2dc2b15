"""The papers' probe (``linear_probe_paper``) follows MELP's SSLFineTuner + main_finetune.py (HKU-MedAI/MELP @ 088741d)
where they were compared on the same features (docs/evaluation.md): the kept epoch is the best validation macro
AUROC of the monitored scores (sigmoids by default, MELP's softmax on request), the cosine ends at final_lr 1e-5."""

import numpy as np
import pytest
import torch

from ecg_eval.metrics import macro_auroc
from ecg_eval.probe import PaperProbeConfig, fit_paper_probe


def _data(n=200, c=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.float32)
    x = (y @ rng.normal(size=(c, d)) + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


@pytest.mark.parametrize("monitor", ["softmax", "sigmoid"])
def test_the_kept_epoch_is_the_best_of_the_monitored_auroc(monitor):
    x, y = _data()
    xv, yv = _data(seed=1)
    fit = fit_paper_probe(x, y, xv, yv, config=PaperProbeConfig(max_epochs=12, monitor=monitor), seed=0)
    logits = torch.as_tensor(xv, dtype=torch.float64) @ torch.as_tensor(fit.weight).T + torch.as_tensor(fit.bias)
    watched = torch.softmax(logits, -1) if monitor == "softmax" else torch.sigmoid(logits)
    assert fit.val_macro_auroc == pytest.approx(macro_auroc(yv, watched.numpy()), abs=1e-6)
    assert fit.val_macro_auroc == max(h["val_macro_auroc"] for h in fit.grid)
    assert fit.iterations == 1 + int(np.argmax([h["val_macro_auroc"] for h in fit.grid]))  # first best epoch kept


def test_defaults_are_melps_and_a_bad_monitor_is_refused(monkeypatch):
    cfg = PaperProbeConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.max_epochs, cfg.patience, cfg.final_lr, cfg.monitor) == (
        1e-3,
        1e-4,
        128,
        100,
        5,
        1e-5,
        "sigmoid",
    )
    assert cfg.batch_order == "melp" and cfg.to_dict()["batch_order"] == "melp"  # in the evaluation identity
    seen = {}
    real = torch.optim.lr_scheduler.CosineAnnealingLR

    def spy(opt, T_max, eta_min=0.0, **kw):
        seen.update(T_max=T_max, eta_min=eta_min)
        return real(opt, T_max=T_max, eta_min=eta_min, **kw)

    monkeypatch.setattr(torch.optim.lr_scheduler, "CosineAnnealingLR", spy)
    x, y = _data(n=40)
    fit_paper_probe(x, y, x, y, config=PaperProbeConfig(max_epochs=2), seed=0)
    assert seen == {"T_max": 2, "eta_min": 1e-5}
    with pytest.raises(ValueError, match="monitor"):
        fit_paper_probe(x, y, x, y, config=PaperProbeConfig(monitor="loss"), seed=0)
    with pytest.raises(ValueError, match="batch_order"):
        fit_paper_probe(x, y, x, y, config=PaperProbeConfig(batch_order="random"), seed=0)


def test_one_class_is_monitored_on_its_sigmoid():
    x, y = _data(c=1)
    fit = fit_paper_probe(x, y, x, y, config=PaperProbeConfig(max_epochs=3, monitor="softmax"), seed=0)
    assert fit.val_macro_auroc is not None and fit.val_macro_auroc > 0.5  # a constant softmax would give no ranking


@pytest.mark.parametrize("seed", [0, 42])
def test_batch_order_is_the_distributed_samplers_of_melps_trainer(seed):
    """MELP's Trainer runs strategy "ddp_find_unused_parameters_true" on one device, so Lightning feeds the shuffled
    training DataLoader through DistributedSampler(shuffle=True, seed=<global seed>) with set_epoch(epoch)."""
    from torch.utils.data.distributed import DistributedSampler

    from ecg_eval.probe import melp_batch_order

    sampler = DistributedSampler(range(37), num_replicas=1, rank=0, shuffle=True, seed=seed)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        assert list(sampler) == melp_batch_order(37, seed, epoch).tolist()


def _reference_loop(x, y, xv, yv, seed, max_epochs=30, patience=5):
    """A plain-torch copy of the protocol as MELP's SSLFineTuner + main_finetune.py run it (one device, fp32): head
    initialised after seeding, batches of 128 from DistributedSampler(seed).set_epoch(e), AdamW(1e-3, 1e-4),
    CosineAnnealingLR(T_max=max_epochs, eta_min=1e-5) stepped per epoch, validation macro AUROC of the softmax,
    the first best epoch kept, stop after `patience` epochs without a strict gain."""
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max_epochs, eta_min=1e-5)
    ds = TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = DataLoader(ds, batch_size=128, sampler=sampler, drop_last=False)
    best, best_epoch, since = -1.0, 0, 0
    for epoch in range(max_epochs):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(head(xb), yb).backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            val = macro_auroc(yv, torch.softmax(head(torch.as_tensor(xv)), -1).double().numpy())
        if val > best:
            best, best_epoch, since, w = val, epoch + 1, 0, head.weight.detach().double().numpy().copy()
        else:
            since += 1
            if since >= patience:
                break
    return best_epoch, best, w


@pytest.mark.parametrize("seed", [0, 3])
def test_softmax_monitor_reproduces_melps_loop_batch_for_batch(seed):
    xa, ya = _data(n=420, c=4, d=8, seed=seed)
    x, y, xv, yv = xa[:300], ya[:300], xa[300:], ya[300:]  # 3 batches per epoch: the batch order matters
    epoch, val, w = _reference_loop(x, y, xv, yv, seed)
    fit = fit_paper_probe(x, y, xv, yv, config=PaperProbeConfig(max_epochs=30, monitor="softmax"), seed=seed)
    assert fit.iterations == epoch
    assert fit.val_macro_auroc == pytest.approx(val, abs=1e-9)
    np.testing.assert_allclose(fit.weight, w, atol=1e-6)


def test_the_older_batch_order_is_kept_on_request(monkeypatch):
    """batch_order="generator" (ecg-eval <= 0.2.1): one generator seeded once, successive permutations; "melp": a
    fresh generator per epoch seeded with seed + epoch (the first epoch's order is the same in both)."""
    from ecg_eval.probe import melp_batch_order

    drawn, real = [], torch.randperm

    def spy(n, *a, **kw):
        perm = real(n, *a, **kw)
        drawn.append(perm.tolist())
        return perm

    x, y = _data(n=50)
    expected = {"melp": [melp_batch_order(50, 7, e).tolist() for e in range(3)]}
    gen = torch.Generator().manual_seed(7)
    expected["generator"] = [real(50, generator=gen).tolist() for _ in range(3)]
    monkeypatch.setattr(torch, "randperm", spy)
    for order in ("melp", "generator"):
        drawn.clear()
        cfg = PaperProbeConfig(max_epochs=3, patience=3, batch_order=order)  # no early stop within 3 epochs
        fit_paper_probe(x, y, x, y, config=cfg, seed=7)
        assert drawn == expected[order]
    assert expected["melp"][0] == expected["generator"][0] and expected["melp"][1] != expected["generator"][1]
