"""How hard is synth-ptbxl? A small supervised 1-D CNN versus a linear probe on a frozen random CNN.

The default difficulty must leave headroom (issue "embedded default"): the supervised model below 0.97
macro AUROC on the hardest PTB-XL task, and the random-encoder probe clearly below the supervised model.

Protocol: the ``synth_ptbxl_{super,sub,form,rhythm}`` tasks (labels and folds through the project's
PTB-XL reader and task rules: strat_fold 1-8 train, 9 val, 10 test), signals resampled to 100 Hz
(10 s -> 1000 samples) and z-scored per lead. Supervised: the CNN below trained on the training folds
(about 2,000 records) with binary cross-entropy, Adam, the epoch with the best validation macro AUROC
kept. Random probe: the same CNN, randomly initialised and frozen; global average+max pooled features;
one-vs-rest logistic regression with C chosen on validation. Test macro AUROC over the task's classes.

    python -m benchmarks.experiments.synthetic_difficulty         # default preset (n=2500), difficulty default
    python -m benchmarks.experiments.synthetic_difficulty --difficulty hard --epochs 20 --width 32
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.signal import resample_poly
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from torch import nn

from ecg_data.paths import atomic_path, cache_root
from ecg_data.synthetic import ensure_preset
from ecg_data.tasks import get_task

KINDS = ("super", "sub", "form", "rhythm")


class SmallCNN(nn.Module):
    """Five strided conv blocks (12 -> 4*width channels), global average+max pooling, linear head
    (width 16: ~60 k parameters; small enough to train on 2 shared CPU cores in minutes)."""

    def __init__(self, n_out: int, width: int = 16) -> None:
        super().__init__()
        chans = [12, width, width * 2, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(a, b, 7, stride=2, padding=3, bias=False), nn.BatchNorm1d(b), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 2, n_out)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    cols = [k for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)]
    return float(np.mean([roc_auc_score(y[:, k], p[:, k]) for k in cols]))


def load_signals(task, ids: list[str]) -> np.ndarray:
    reader = task.reader()
    out = np.empty((len(ids), 12, 1000), np.float32)
    for i, rid in enumerate(ids):
        x = resample_poly(reader.read(rid).signal.astype(np.float64), 1, 5, axis=1)
        out[i] = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
    return out


def load_all(root) -> dict[str, np.ndarray]:
    """Every record of the corpus at 100 Hz, z-scored; cached as one .npz so reruns skip WFDB reading."""
    npz = cache_root() / "synthetic-difficulty" / f"{root.name}-x100.npz"
    if npz.is_file():
        with np.load(npz) as z:
            return dict(zip(z["ids"].tolist(), z["x"]))
    task = get_task("synth_ptbxl_rhythm", root=root)
    ids = list(task.reader().metadata().index)
    x = load_signals(task, ids)
    npz.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array(ids), x=x)
    return dict(zip(ids, x))


def train_supervised(xtr, ytr, xva, yva, epochs: int, seed: int, width: int) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN(ytr.shape[1], width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    best, best_state = -1.0, None
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=g).split(64):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
        auc = macro_auroc(yva, predict(model, xva))
        print(f"  epoch {_ + 1}: val macro AUROC {auc:.3f}", flush=True)
        if auc > best:
            best, best_state = auc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model


@torch.no_grad()
def predict(model: SmallCNN, x: np.ndarray) -> np.ndarray:
    model.eval()
    return torch.cat([torch.sigmoid(model(b)) for b in torch.from_numpy(x).split(256)]).numpy()


@torch.no_grad()
def embed(model: SmallCNN, x: np.ndarray) -> np.ndarray:
    model.eval()
    return torch.cat([model.embed(b) for b in torch.from_numpy(x).split(256)]).numpy()


def random_probe(xtr, ytr, xva, yva, xte, seed: int, width: int) -> np.ndarray:
    torch.manual_seed(seed)
    enc = SmallCNN(1, width)
    ftr, fva, fte = (embed(enc, x) for x in (xtr, xva, xte))
    sc = StandardScaler().fit(ftr)
    ftr, fva, fte = sc.transform(ftr), sc.transform(fva), sc.transform(fte)
    best, best_c = -1.0, 1.0
    for c in (0.001, 0.01, 0.1, 1.0):
        pv = fit_ovr(ftr, ytr, fva, c)
        auc = macro_auroc(yva, pv)
        if auc > best:
            best, best_c = auc, c
    return fit_ovr(ftr, ytr, fte, best_c)


def fit_ovr(ftr, ytr, fte, c: float) -> np.ndarray:
    out = np.zeros((len(fte), ytr.shape[1]))
    for k in range(ytr.shape[1]):
        if ytr[:, k].min() == ytr[:, k].max():
            out[:, k] = ytr[0, k]
            continue
        clf = LogisticRegression(C=c, max_iter=2000)
        out[:, k] = clf.fit(ftr, ytr[:, k]).predict_proba(fte)[:, 1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="synth-ptbxl size (default: the preset's)")
    ap.add_argument("--difficulty", default="default")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tasks", default=",".join(KINDS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    root = ensure_preset("synth-ptbxl", n=args.n, seed=args.seed, difficulty=args.difficulty)
    print(f"corpus: {root}  ({time.time() - t0:.0f} s)", flush=True)
    cache = load_all(root)
    print(f"signals: {len(cache)} records at 100 Hz ({time.time() - t0:.0f} s)", flush=True)
    rows = []
    for kind in args.tasks.split(","):
        task = get_task(f"synth_ptbxl_{kind}", root=root)
        split = {s: task.splits[s] for s in ("train", "val", "test")}
        x = {s: np.stack([cache[r] for r in ids]) for s, ids in split.items()}
        y = {s: task.y(ids) for s, ids in split.items()}
        t1 = time.time()
        sup = train_supervised(x["train"], y["train"], x["val"], y["val"], args.epochs, args.seed, args.width)
        auc_sup = macro_auroc(y["test"], predict(sup, x["test"]))
        auc_rand = macro_auroc(
            y["test"], random_probe(x["train"], y["train"], x["val"], y["val"], x["test"], args.seed, args.width)
        )
        rows.append((kind, len(task.classes), len(split["train"]), len(split["test"]), auc_sup, auc_rand))
        print(
            f"{kind:7s} classes={len(task.classes):2d} train={len(split['train'])} test={len(split['test'])} "
            f"supervised={auc_sup:.3f} random-probe={auc_rand:.3f} ({time.time() - t1:.0f} s)",
            flush=True,
        )
    print("\n| task | classes | train | test | supervised 1-D CNN | linear probe, random frozen CNN |")
    print("|---|---|---|---|---|---|")
    for kind, nc, ntr, nte, a, b in rows:
        print(f"| synth_ptbxl_{kind} | {nc} | {ntr} | {nte} | {a:.3f} | {b:.3f} |")
    print(f"\ndifficulty={args.difficulty} seed={args.seed} epochs={args.epochs} total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
