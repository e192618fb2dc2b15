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


def test_one_class_is_monitored_on_its_sigmoid():
    x, y = _data(c=1)
    fit = fit_paper_probe(x, y, x, y, config=PaperProbeConfig(max_epochs=3, monitor="softmax"), seed=0)
    assert fit.val_macro_auroc is not None and fit.val_macro_auroc > 0.5  # a constant softmax would give no ranking
