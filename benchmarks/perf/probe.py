"""Our full-batch L-BFGS probe versus the papers' probe (``ecg_eval.probe.fit_paper_probe``), on the same features.

The grid is the benchmark's: 6 tasks x 3 training fractions (1%, 10%, 100%) x 3 seeds = 54 probes. Features
are SIMULATED (no real cached features on this machine): per task, multi-label targets with the class count and
rough split sizes of PTB-XL super/sub/form/rhythm, CPSC2018 and CSN, and 256-d features = a random linear
map of the labels plus Gaussian noise. Both probes see the same standardised features and subsets.

Baseline: the papers' probe as shipped (mode ``linear_probe_paper``): linear head on the frozen features, AdamW
lr 1e-3, weight decay 1e-4, cosine schedule, batch 128, up to 100 epochs, early stopping on the validation macro
AUROC with patience 5 (MELP scripts/finetune). Both probes get the same raw features and subsets (each does its
own standardisation or none, as in the harness).

Default run is short (splits at 5% of their real size, at most 20 epochs for the baseline); the papers' setting is
``--scale 1 --baseline-epochs 100``. Prints both wall times and their ratio, and the AUROC gap (ours minus the
papers' probe) per training fraction: positive means our probe reads higher for reasons that are not the encoder.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ecg_eval.metrics import multilabel_auroc
from ecg_eval.probe import PaperProbeConfig, ProbeConfig, fit_paper_probe, fit_probe

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


def simulate(
    n_classes: int, sizes: tuple[int, int, int], d: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.05, help="fraction of the real split sizes to simulate")
    ap.add_argument("--baseline-epochs", type=int, default=20, help="the papers' probe: up to 100")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default=",".join(t[0] for t in TASKS), help="comma-separated subset of the tasks")
    ap.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds per (task, fraction)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ProbeConfig()
    paper = PaperProbeConfig(max_epochs=args.baseline_epochs)
    t_fast = t_base = 0.0
    gaps: dict[float, list[float]] = {f: [] for f in FRACTIONS}
    print(
        f"simulated features, scale={args.scale}, d={args.dim}; ours: grid {cfg.weight_decays} x {cfg.iterations}; "
        f"paper: AdamW lr {paper.lr} wd {paper.weight_decay} batch {paper.batch_size} <= {paper.max_epochs} epochs, "
        f"patience {paper.patience}"
    )
    print(f"{'task':13s} {'frac':>5s} {'seed':>4s} {'n':>6s} {'ours':>8s} {'paper':>8s} {'gap':>7s}")
    wanted = args.tasks.split(",")
    for ti, (name, c, *sizes) in enumerate(TASKS):
        if name not in wanted:
            continue
        data = simulate(c, tuple(max(50, int(s * args.scale)) for s in sizes), args.dim, seed=ti)
        (x_all, y_all), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
        names = [str(j) for j in range(c)]
        for frac in FRACTIONS:
            for seed in SEEDS[: args.seeds]:
                idx = subset(y_all, frac, seed)
                x, y = x_all[idx], y_all[idx]
                t0 = time.perf_counter()
                fast = multilabel_auroc(
                    yt, fit_probe(x, y, xv, yv, config=cfg, seed=seed).predict_proba(xt), names
                ).macro
                t1 = time.perf_counter()
                loop = multilabel_auroc(
                    yt, fit_paper_probe(x, y, xv, yv, config=paper, seed=seed).predict_proba(xt), names
                ).macro
                t2 = time.perf_counter()
                t_fast += t1 - t0
                t_base += t2 - t1
                gaps[frac].append(fast - loop)
                print(
                    f"{name:13s} {frac:5.2f} {seed:4d} {len(idx):6d} {fast:8.4f} {loop:8.4f} {100 * (fast - loop):+7.2f}"
                )
    ratio = t_base / t_fast if t_fast else float("nan")
    print(f"\nL-BFGS probe: {t_fast:.1f} s; papers' probe: {t_base:.1f} s; speed ratio {ratio:.1f}x")
    summary = {f: float(np.mean(g)) * 100 for f, g in gaps.items() if g}
    print(
        "AUROC gap, ours minus papers' probe (points x100): "
        + ", ".join(f"{f:g}: {v:+.2f}" for f, v in summary.items())
    )
    return {"ratio": ratio, "t_lbfgs_s": t_fast, "t_paper_s": t_base, "gap_points": summary}


if __name__ == "__main__":
    main()
