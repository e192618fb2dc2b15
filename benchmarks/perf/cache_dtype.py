"""Storage dtype of the record cache: float16 (and a simulated int16 with per-record scale) against float32.

On the real PTB-XL sample (``../shared/data/ptbxl-500``, 500 Hz): builds the float32 cache of a preset
and its float16 twins (normalisation baked in, and stored before normalisation with the preset's
normalisation applied per batch as on the device), and reports the largest and mean absolute
difference from float32. int16 with a per-record affine scale (16 bits over each record's range) is
simulated from the float32 rows, to decide between the two without building a third format.

Then the effect on a probe: a fixed random-init ``resnet18_1d`` tiny encoder (seeded, eval mode) embeds
every record from each cache; ``ecg_eval.probe.fit_probe`` fits the ``ptbxl_super`` labels on folds 1-8,
selects on fold 9 and scores macro AUROC on fold 10. Same encoder, same probe, same labels: only the
stored dtype differs.

    python -m benchmarks.perf.cache_dtype                 # presets melp and esi, ~2-4 min on 2 cores
    python -m benchmarks.perf.cache_dtype --presets melp heartlang raw500
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def int16_per_record(x: np.ndarray) -> np.ndarray:
    """Quantise each record to int16 over its own [min, max] and back (what an int16 cache would return)."""
    lo = x.min(axis=(1, 2), keepdims=True).astype(np.float64)
    hi = x.max(axis=(1, 2), keepdims=True).astype(np.float64)
    scale = np.where(hi > lo, (hi - lo) / 65535.0, 1.0)
    q = np.round((x - lo) / scale) - 32768
    return ((q + 32768) * scale + lo).astype(np.float32)


def embed(x: np.ndarray, seed: int = 0, batch: int = 50) -> np.ndarray:
    from ecg_encoders.registry import build_ecg_encoder

    torch.manual_seed(seed)
    enc = build_ecg_encoder("resnet18_1d", "tiny").eval()
    with torch.no_grad():
        return torch.cat(
            [enc(torch.from_numpy(np.array(x[i : i + batch]))).pooled for i in range(0, len(x), batch)]
        ).numpy()


def probe_auroc(feats: np.ndarray, ids: list[str], task: object) -> float:
    from ecg_eval.metrics import macro_auroc
    from ecg_eval.probe import fit_probe

    pos = {r: i for i, r in enumerate(ids)}
    rows = {s: [pos[r] for r in task.splits[s] if r in pos] for s in ("train", "val", "test")}  # type: ignore[attr-defined]
    y = {s: task.y([ids[i] for i in rows[s]]) for s in rows}  # type: ignore[attr-defined]
    fit = fit_probe(feats[rows["train"]], y["train"], feats[rows["val"]], y["val"], seed=0)
    return float(macro_auroc(y["test"], fit.predict_proba(feats[rows["test"]])))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "ptbxl-500"))
    p.add_argument("--presets", nargs="+", default=["melp", "esi"])
    p.add_argument("--no-probe", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    from ecg_data.cache import build_cache
    from ecg_data.readers import get_reader
    from ecg_data.tasks import get_task

    reader = get_reader("ptbxl", args.root, fs=500)
    task = get_task("ptbxl_super", root=args.root)
    ids = reader.metadata().index.tolist()
    print(f"# cache storage dtypes on {args.root} ({len(ids)} records, torch {torch.__version__})")
    with tempfile.TemporaryDirectory(prefix="ecg-dtype-") as tmp:
        for name in args.presets:
            t0 = time.perf_counter()
            kw = {"out_dir": tmp, "workers": 2, "progress": False}
            ref = build_cache(reader, ids, name, storage="float32", **kw)
            f32 = np.asarray(ref.signals)
            variants = {
                "float16, baked": build_cache(reader, ids, name, storage="float16", **kw).batch(slice(None)),
                "float16, normalised per batch": build_cache(
                    reader, ids, name, storage="float16", normalize="device", **kw
                ).batch(slice(None)),  # fmt: skip
                "int16 per-record scale (simulated)": int16_per_record(f32),
            }
            rids = ref.record_ids
            base_auc = None if args.no_probe else probe_auroc(embed(f32), rids, task)
            print(f"\npreset {name}: float32 range [{f32.min():.3g}, {f32.max():.3g}], {len(rids)} records "
                  f"({time.perf_counter() - t0:.0f} s to build)")  # fmt: skip
            print(f"  {'storage':<36} {'max |err|':>10} {'mean |err|':>11} {'probe AUROC':>12} {'diff':>8}")
            print(f"  {'float32 (reference)':<36} {0:>10.2e} {0:>11.2e} "
                  f"{'-' if base_auc is None else f'{base_auc:.4f}':>12} {'':>8}")  # fmt: skip
            for label, x in variants.items():
                err = np.abs(x.astype(np.float64) - f32)
                auc = None if args.no_probe else probe_auroc(embed(x), rids, task)
                auc_s = "-" if auc is None else f"{auc:.4f}"
                diff = "" if auc is None or base_auc is None else f"{auc - base_auc:+.4f}"
                print(f"  {label:<36} {err.max():>10.2e} {err.mean():>11.2e} {auc_s:>12} {diff:>8}")


if __name__ == "__main__":
    main()
