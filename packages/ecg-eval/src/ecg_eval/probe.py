"""Linear probe on frozen features: one linear layer, sigmoid outputs, binary cross-entropy.

Two probes, both reported, each a mode declared in ``ecg_eval.modes`` and bound to its ``classification.Probe``:
``lbfgs`` (ours, below; mode ``linear_probe``) and ``paper`` (mode ``linear_probe_paper``: the papers' epoch loop,
``fit_paper_probe``), so a number can stand beside a paper's with the paper's probe, and the gap between the two
probes is measured on the same features.

Why full-batch: the features are a small in-memory matrix, and logistic regression is convex, so a full-batch
quasi-Newton optimiser (L-BFGS) on the standardised matrix, warm-started along the weight-decay path, reaches
each optimum in a few dozen matrix products — no DataLoader and no epoch loop. Model selection (weight decay x number of iterations) uses the
validation macro AUROC only; the test split is touched once, by the selected model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ecg_eval.metrics import macro_auroc


@dataclass(frozen=True)
class ProbeConfig:
    """The selection grid. Weight decay is an L2 penalty on the weights (not the bias), scaled per sample.

    Defaults are ours (no paper fixes a full-batch grid); the iteration checkpoints play the role of the
    epochs the original code selects over (MERL finetune/main_single.py and MELP scripts/finetune pick the best
    *test* epoch; we pick on validation).
    """

    weight_decays: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)  # solved in this order, warm-started
    iterations: tuple[int, ...] = (10, 30)  # cumulative L-BFGS iterations per weight decay, checked on val
    tolerance_change: float = 1e-5  # stop a solve once the loss or step changes less than this
    lr: float = 1.0
    history_size: int = 10
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProbeFit:
    """The selected linear model and how it was selected."""

    weight: np.ndarray  # (C, d) in standardised feature space
    bias: np.ndarray  # (C,)
    mean: np.ndarray  # (d,) train mean used for standardisation
    scale: np.ndarray  # (d,) train std (floored)
    weight_decay: float
    iterations: int
    val_macro_auroc: float | None
    grid: list[dict] = field(default_factory=list)  # every (weight_decay, iterations, val_macro_auroc)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, d) -> (N, C) sigmoid probabilities."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        logits = z @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))

    def selection(self) -> dict:
        return {
            "weight_decay": self.weight_decay,
            "iterations": self.iterations,
            "val_macro_auroc": self.val_macro_auroc,
            "grid": self.grid,
        }


def standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train-set mean and std (std floored so constant features do not blow up)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale < 1e-6, 1.0, scale)


def _fit_grid(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: np.ndarray, cfg: ProbeConfig, seed: int
) -> list[dict]:
    """A warm-started regularisation path: strongest weight decay first, each solve starting from the last.

    Neighbouring penalties have nearby optima, so each solve needs only a few L-BFGS iterations; the model is
    scored on val at every iteration checkpoint of every penalty (the "epochs x weight decay" grid).
    """
    c, d = y.shape[1], x.shape[1]
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    weight = (torch.randn(c, d, generator=gen, dtype=x.dtype) * 0.01).to(x.device).requires_grad_()
    bias = torch.zeros(c, dtype=x.dtype, device=x.device, requires_grad=True)
    out: list[dict] = []
    for wd in sorted(cfg.weight_decays, reverse=True):
        opt = torch.optim.LBFGS(
            [weight, bias],
            lr=cfg.lr,
            max_iter=1,
            history_size=cfg.history_size,
            tolerance_change=cfg.tolerance_change,
            line_search_fn="strong_wolfe",
        )

        def closure(wd: float = wd, opt: torch.optim.LBFGS = opt) -> torch.Tensor:
            opt.zero_grad()
            logits = torch.addmm(bias, x, weight.T)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum") / (n * c)
            loss = loss + 0.5 * wd * weight.pow(2).sum()
            loss.backward()
            return loss

        done = 0
        for target in sorted(cfg.iterations):
            opt.param_groups[0]["max_iter"] = target - done
            opt.param_groups[0]["max_eval"] = int((target - done) * 1.25) + 5
            opt.step(closure)
            done = target
            with torch.no_grad():
                val_logits = torch.addmm(bias, x_val, weight.T).double().cpu().numpy()
            out.append(
                {
                    "weight_decay": wd,
                    "iterations": target,
                    "val_macro_auroc": macro_auroc(y_val, val_logits),
                    "weight": weight.detach().double().cpu().numpy().copy(),
                    "bias": bias.detach().double().cpu().numpy().copy(),
                }
            )
    return out


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    config: ProbeConfig | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> ProbeFit:
    """Fit the grid on train, select on validation macro AUROC (ties: fewer iterations, then stronger decay).

    ``device`` holds the feature matrices and runs L-BFGS (the evaluation device); the initial weights are drawn
    on the CPU, so the fit starts from the same point on every device."""
    cfg = config or ProbeConfig()
    if x_train.shape[0] == 0:
        raise ValueError("linear probe: the training subset is empty")
    if x_train.shape[0] != y_train.shape[0] or x_val.shape[0] != y_val.shape[0]:
        raise ValueError("linear probe: features and labels differ in length")
    dtype = getattr(torch, cfg.dtype)
    mean, scale = standardiser(np.asarray(x_train, dtype=np.float64))
    dev = torch.device(device)
    xt = torch.as_tensor((x_train - mean) / scale, dtype=dtype, device=dev)
    yt = torch.as_tensor(y_train, dtype=dtype, device=dev)
    xv = torch.as_tensor((x_val - mean) / scale, dtype=dtype, device=dev)
    candidates = _fit_grid(xt, yt, xv, np.asarray(y_val), cfg, seed)

    def rank(c: dict) -> tuple:
        score = -np.inf if c["val_macro_auroc"] is None else c["val_macro_auroc"]
        return (score, -c["iterations"], c["weight_decay"])

    best = max(candidates, key=rank)
    return ProbeFit(
        weight=best["weight"],
        bias=best["bias"],
        mean=mean,
        scale=scale,
        weight_decay=best["weight_decay"],
        iterations=best["iterations"],
        val_macro_auroc=best["val_macro_auroc"],
        grid=[{k: c[k] for k in ("weight_decay", "iterations", "val_macro_auroc")} for c in candidates],
    )


def select_rows(record_ids: Sequence[str], wanted: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Row positions of ``wanted`` ids in ``record_ids`` (in ``wanted`` order) and the ids that are absent."""
    pos = {r: i for i, r in enumerate(record_ids)}
    rows = [pos[w] for w in wanted if w in pos]
    missing = [w for w in wanted if w not in pos]
    return np.asarray(rows, dtype=np.int64), missing


@dataclass(frozen=True)
class PaperProbeConfig:
    """The papers' probe: frozen encoder, linear head, AdamW, cosine schedule, early stopping on validation.

    Values from MELP ``scripts/finetune/main_finetune.py`` / ``src/melp/models/ssl_finetuner.py`` (commit
    088741d): AdamW lr 1e-3, weight decay 1e-4, cosine annealing per epoch over 100 epochs down to ``final_lr``
    1e-5, batch 128, up to 100 epochs; early stopping on the validation macro AUROC with patience 5, the best
    epoch kept; the training batches in the order MELP's Trainer draws them (``batch_order``), the head initialised
    after seeding. Early stopping watches the validation macro AUROC of the per-class sigmoids, the scores the test
    is scored on (``monitor="sigmoid"``); MELP's ``val_auc`` watches the logits' softmax over the classes, and so does
    ``monitor="softmax"``, which reproduces MELP's kept epoch. Not the default: a softmax couples the classes of a
    multi-label task, and the head it keeps can rank a class backwards on its own sigmoid. MELP also scores the
    test on the softmax; we do not. Features are used as the encoder gives them (no standardisation), as in
    the papers' code where the head sits on the frozen encoder. Checked against the authors' ``SSLFineTuner`` on
    the same features and subsets: docs/evaluation.md "The papers' probe, checked against the papers' code".
    """

    kind: str = "paper"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 5
    schedule: str = "cosine"  # per-epoch cosine annealing over max_epochs
    final_lr: float = 1e-5  # the cosine's floor (SSLFineTuner final_lr -> CosineAnnealingLR eta_min)
    monitor: str = "sigmoid"  # what early stopping and the kept epoch watch; "softmax": MELP's val_auc
    # The training batches' order. "melp": epoch e's permutation from a generator seeded with seed + e, the order of
    # MELP's Trainer (main_finetune.py:67 strategy="ddp_find_unused_parameters_true" on one device -> Lightning's
    # DistributedSampler(seed).set_epoch(e) over finetune_datamodule.py:40-47's shuffled loader); "generator": one
    # generator seeded once, successive permutations (ecg-eval <= 0.2.1, kept to reproduce older result files).
    batch_order: str = "melp"

    def to_dict(self) -> dict:
        return asdict(self)


def melp_batch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which MELP's probe sees the training records in (0-based) ``epoch``: a permutation drawn from a
    fresh generator seeded with ``seed + epoch``. MELP's Trainer runs a DDP strategy even on one device
    (``scripts/finetune/main_finetune.py``: ``strategy="ddp_find_unused_parameters_true"``), so Lightning replaces
    the shuffled DataLoader's sampler with torch's ``DistributedSampler(shuffle=True, seed=<the global seed>)`` and
    calls ``set_epoch`` every epoch; with one replica it yields exactly this permutation, unpadded. The order is
    therefore a function of (seed, epoch) alone, not of the global random state, and our probe draws the same one."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))


def fit_paper_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    config: PaperProbeConfig | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> ProbeFit:
    """Mini-batch AdamW epochs; keep the epoch with the best validation macro AUROC; stop after ``patience``.

    ``device`` holds the features and the head (the evaluation device); the head is initialised from the CPU
    generator seeded with ``seed`` and the batches are drawn in MELP's order (``melp_batch_order``), so the fit
    starts from the same point on every device and sees the batches MELP's code would with the same seed."""
    cfg = config or PaperProbeConfig()
    if cfg.monitor not in ("softmax", "sigmoid"):
        raise ValueError(f"linear probe (paper): monitor {cfg.monitor!r} is not 'softmax' or 'sigmoid'")
    if cfg.batch_order not in ("melp", "generator"):
        raise ValueError(f"linear probe (paper): batch_order {cfg.batch_order!r} is not 'melp' or 'generator'")
    if x_train.shape[0] == 0:
        raise ValueError("linear probe (paper): the training subset is empty")
    if x_train.shape[0] != y_train.shape[0] or x_val.shape[0] != y_val.shape[0]:
        raise ValueError("linear probe (paper): features and labels differ in length")
    gen = torch.Generator().manual_seed(seed)  # batch_order "generator" only
    torch.manual_seed(seed)
    dev = torch.device(device)
    # np.array copies: cached features and task labels come read-only, which torch warns about on every fit
    xt = torch.from_numpy(np.array(x_train, dtype=np.float32)).to(dev)
    yt = torch.from_numpy(np.array(y_train, dtype=np.float32)).to(dev)
    xv = torch.from_numpy(np.array(x_val, dtype=np.float32)).to(dev)
    head = torch.nn.Linear(xt.shape[1], yt.shape[1]).to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs, eta_min=cfg.final_lr)
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    history: list[dict] = []
    since = 0
    for epoch in range(1, cfg.max_epochs + 1):
        if cfg.batch_order == "melp":
            perm = melp_batch_order(xt.shape[0], seed, epoch - 1)
        else:
            perm = torch.randperm(xt.shape[0], generator=gen)
        head.train()
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size].to(dev)
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            logits = head(xv)
            # one class: a softmax over one logit is constant, so watch its sigmoid
            softmax = cfg.monitor == "softmax" and logits.shape[1] > 1
            watched = torch.softmax(logits, dim=-1) if softmax else torch.sigmoid(logits)
            val = macro_auroc(y_val, watched.double().cpu().numpy())
        history.append({"weight_decay": cfg.weight_decay, "iterations": epoch, "val_macro_auroc": val})
        score = -np.inf if val is None else val
        if best is None or score > best[0]:
            best = (
                score,
                epoch,
                head.weight.detach().double().cpu().numpy().copy(),
                head.bias.detach().double().cpu().numpy().copy(),
            )
            since = 0
        else:
            since += 1
            if since >= cfg.patience:
                break
    assert best is not None
    d = xt.shape[1]
    return ProbeFit(
        weight=best[2],
        bias=best[3],
        mean=np.zeros(d),
        scale=np.ones(d),
        weight_decay=cfg.weight_decay,
        iterations=best[1],
        val_macro_auroc=None if best[0] == -np.inf else float(best[0]),
        grid=history,
    )
