"""Full-batch linear probe (ecg_eval.probe) versus an epoch-loop probe in the style of the original code.

The grid is the benchmark's: 6 tasks x 3 training fractions (1%, 10%, 100%) x 3 seeds = 54 probes. Features
are SIMULATED (no real cached features on this machine): per task, multi-label targets with the class count and
rough split sizes of PTB-XL super/sub/form/rhythm, CPSC2018 and CSN, and 256-d features = a random linear
map of the labels plus Gaussian noise. Both probes see the same standardised features and subsets.

Baseline (MERL finetune/sub_script/ptbxl/*.sh: batch size 16, Adam, lr 1e-3, 100 epochs; linear head on frozen
features): a DataLoader over the feature matrix, Adam, a fixed number of epochs, validation macro AUROC after
every epoch, the best validation epoch kept (the original picks the best *test* epoch; we do not).

Default run is short (splits at 5% of their real size, 20 baseline epochs: the baseline's time grows linearly
with both); the original setting is ``--scale 1 --baseline-epochs 100``. Prints both wall times, their ratio, and the mean |AUROC difference|.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ecg_eval.metrics import macro_auroc, multilabel_auroc
from ecg_eval.probe import ProbeConfig, fit_probe, standardiser

# (name, n_classes, train, val, test) — approximate full split sizes of the real tasks
TASKS = [
    ("ptbxl_super", 5, 17_000, 2_150, 2_150),
    ("ptbxl_sub", 23, 17_000, 2_150, 2_150),
    ("ptbxl_form", 19, 7_200, 950, 950),
    ("ptbxl_rhythm", 12, 16_800, 2_100, 2_100),
    ("cpsc2018", 9, 5_500, 690, 690),
    ("csn", 38, 18_000, 2_250, 2_250),
]
FRACTIONS = (0.01, 0.1, 1.0)
SEEDS = (0, 1, 2)


def simulate(n_classes: int, sizes: tuple[int, int, int], d: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    prevalence = np.clip(0.4 * 0.8 ** np.arange(n_classes), 0.01, None)
    mix = rng.normal(size=(n_classes, d)) / np.sqrt(n_classes)
    out = {}
    for split, n in zip(("train", "val", "test"), sizes):
        y = (rng.random((n, n_classes)) < prevalence).astype(np.float32)
        x = (y @ mix * 0.6 + rng.normal(size=(n, d))).astype(np.float32)
        out[split] = (x, y)
    return out


def subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded subset with >= 1 positive per class where the split has one (like ecg-data's subsets)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n = max(1, int(round(fraction * len(y))))
    first = [order[np.flatnonzero(y[order, j])[0]] for j in range(y.shape[1]) if y[:, j].any()]
    rest = [i for i in order if i not in set(first)]
    return np.asarray(sorted(set(first) | set(rest[: max(0, n - len(set(first)))])))


def epoch_loop_probe(x, y, xv, yv, xt, *, epochs: int, batch_size: int, lr: float, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch_size, shuffle=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state = -np.inf, None
    for _ in range(epochs):
        head.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(head(xb), yb).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            auc = macro_auroc(yv, head(torch.from_numpy(xv)).numpy())
        if auc is not None and auc > best:
            best, best_state = auc, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    with torch.no_grad():
        return torch.sigmoid(head(torch.from_numpy(xt))).numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.05, help="fraction of the real split sizes to simulate")
    ap.add_argument("--baseline-epochs", type=int, default=20, help="MERL uses 100")
    ap.add_argument("--batch-size", type=int, default=16, help="MERL uses 16")
    ap.add_argument("--lr", type=float, default=1e-3, help="MERL uses 1e-3")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default=",".join(t[0] for t in TASKS), help="comma-separated subset of the tasks")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ProbeConfig()
    t_fast = t_base = 0.0
    diffs = []
    print(f"simulated features, scale={args.scale}, d={args.dim}, baseline epochs={args.baseline_epochs}, "
          f"batch={args.batch_size}; probe grid {cfg.weight_decays} x {cfg.iterations}")
    print(f"{'task':13s} {'frac':>5s} {'seed':>4s} {'n':>6s} {'fast AUROC':>10s} {'loop AUROC':>10s}")
    wanted = args.tasks.split(",")
    for ti, (name, c, *sizes) in enumerate(TASKS):
        if name not in wanted:
            continue
        data = simulate(c, tuple(max(50, int(s * args.scale)) for s in sizes), args.dim, seed=ti)
        (x_all, y_all), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
        for frac in FRACTIONS:
            for seed in SEEDS:
                idx = subset(y_all, frac, seed)
                x, y = x_all[idx], y_all[idx]
                t0 = time.perf_counter()
                fit = fit_probe(x, y, xv, yv, config=cfg, seed=seed)
                fast = multilabel_auroc(yt, fit.predict_proba(xt), [str(j) for j in range(c)]).macro
                t1 = time.perf_counter()
                mean, scale = standardiser(x.astype(np.float64))
                std = lambda a: ((a - mean) / scale).astype(np.float32)  # noqa: E731
                s = epoch_loop_probe(std(x), y, std(xv), yv, std(xt), epochs=args.baseline_epochs,
                                     batch_size=args.batch_size, lr=args.lr, seed=seed)
                loop = multilabel_auroc(yt, s, [str(j) for j in range(c)]).macro
                t2 = time.perf_counter()
                t_fast += t1 - t0
                t_base += t2 - t1
                diffs.append(abs(fast - loop))
                print(f"{name:13s} {frac:5.2f} {seed:4d} {len(idx):6d} {fast:10.4f} {loop:10.4f}")
    print(f"\nfull-batch probe: {t_fast:.1f} s; epoch-loop probe: {t_base:.1f} s; "
          f"speed-up: {t_base / t_fast:.1f}x (target >= 20x)")
    print(f"|AUROC difference|: mean {np.mean(diffs):.4f}, max {np.max(diffs):.4f} over {len(diffs)} probes")


if __name__ == "__main__":
    main()
