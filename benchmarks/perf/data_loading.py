"""Training-loader throughput: the batch loader over a float16 cache, the landed per-item cache dataset,
and reading WFDB files per item, for 0, 1 and 2 DataLoader workers.

The baseline is what the original MELP code does in ``__getitem__`` (HKU-MedAI/MELP
src/melp/datasets/finetune_dataset.py): ``wfdb.rdsamp`` the record, ``[:, :5000]``, global min-max.
"landed" is ``CachedECGDataset`` (float32 cache) + ``DataLoader(batch_size=B)``; "batch" is
``ecg_data.loader.make_loader`` over the float16 cache: one gather per batch, delivered in float16
(the conversion to float32, normalisation and lead masking run on the GPU, ``to_device``, and are not
timed here). All loaders use the same batch size and shuffling, are warm (one untimed epoch), and
are timed in alternating rounds (every loader and worker count once per round), so a changing load
on a shared machine does not favour one of them; medians over rounds are reported.

Second part: peak memory of converting a split, for 500 and 5,000 records, each in a fresh
subprocess. Those records come from a synthetic reader producing random 12 x 5000 signals at
500 Hz (PTB-XL-500 has only 500 records); the conversion is the same code path.

    python -m benchmarks.perf.data_loading                       # < 2 min: ptbxl-500 + memory for 500/5000
    python -m benchmarks.perf.data_loading --root PATH --epochs 3 --num-workers 2 --mem-records 500 5000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import wfdb
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[2]


class WfdbPerItemDataset(Dataset):
    """The baseline: one WFDB read per item, preprocessed like MELP (first 5000 samples, global min-max)."""

    def __init__(self, root: Path, paths: list[str], reports: list[str]) -> None:
        self.root, self.paths, self.reports = root, paths, reports

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ecg = wfdb.rdsamp(str(self.root / self.paths[i]))[0].T[:, :5000]
        ecg = (ecg - np.min(ecg)) / (np.max(ecg) - np.min(ecg) + 1e-8)
        return {"ecg": torch.from_numpy(ecg).float(), "report": self.reports[i], "index": i}


def _loader(ds: Dataset, args: argparse.Namespace) -> DataLoader:
    return DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers,
                      persistent_workers=args.num_workers > 0)  # fmt: skip


def _rate(loader: Any, min_epochs: int, min_seconds: float) -> float:
    """Samples per second over at least ``min_epochs`` epochs and ``min_seconds`` seconds."""
    n, epochs, t0 = 0, 0, time.perf_counter()
    while epochs < min_epochs or time.perf_counter() - t0 < min_seconds:
        for batch in loader:
            n += int(batch["ecg"].shape[0])
        epochs += 1
    return n / (time.perf_counter() - t0)


class _Epochs:
    """Iterate a make_loader DataLoader epoch after epoch (set_epoch, as a training loop does)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader, self.epoch = loader, 0

    def __iter__(self) -> Any:
        self.loader.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


def loader_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every loader x worker count warm, then ``rounds`` rounds timing each once; per-round rates."""
    from ecg_data.cache import build_cache
    from ecg_data.loader import make_loader
    from ecg_data.readers import get_reader
    from ecg_data.torch_datasets import CachedECGDataset

    reader = get_reader("ptbxl", args.root, fs=500)
    meta = reader.metadata()
    ids = meta.index.tolist()
    reports = ["" if r is None else str(r) for r in meta["report"]]

    with tempfile.TemporaryDirectory(prefix="ecg-bench-cache-") as tmp:
        t0 = time.perf_counter()
        kw = {"out_dir": tmp, "workers": args.build_workers, "progress": False}
        split32 = build_cache(reader, ids, args.preset, storage="float32", **kw)
        build_s = time.perf_counter() - t0
        split16 = build_cache(reader, ids, args.preset, storage="float16", **kw)
        loaders: dict[tuple[int, str], Any] = {}
        for w in args.workers:
            a = argparse.Namespace(**{**vars(args), "num_workers": w})
            loaders[w, "wfdb"] = _loader(WfdbPerItemDataset(Path(args.root), meta["path"].tolist(), reports), a)
            loaders[w, "landed"] = _loader(CachedECGDataset(split32), a)
            loaders[w, "batch"] = _Epochs(make_loader(split16, args.batch_size, num_workers=w, drop_last=False))
        for loader in loaders.values():
            _rate(loader, 1, 0.0)  # warm-up: page cache, worker start
        rounds: list[dict[tuple[int, str], float]] = []
        for _ in range(args.rounds):
            r = {}
            for (w, kind), loader in loaders.items():
                r[w, kind] = _rate(loader, args.epochs, 0.0) if kind == "wfdb" else _rate(loader, 3, args.cache_seconds)
            rounds.append(r)
    return {"records": len(ids), "written": len(split16), "build_s": build_s, "rounds": rounds}


def _median(rounds: list[dict[Any, float]], f: Any) -> float:
    return float(np.median([f(r) for r in rounds]))


# --- conversion memory ----------------------------------------------------------------------------------


class SyntheticReader:
    """A DatasetReader stand-in: random 12 x 5000 float32 signals at 500 Hz, deterministic per id, no files."""

    name, version, native_fs = "synthetic-bench", "0", 500

    def __init__(self, n: int) -> None:
        self.n = n

    def fingerprint(self) -> str:
        return f"n={self.n}"

    def read(self, record_id: str) -> Any:
        from ecg_data.record import Record

        rng = np.random.default_rng(int(record_id))
        sig = rng.standard_normal((12, 5000), dtype=np.float32)
        return Record(signal=sig, fs=500.0, record_id=record_id, patient_id=str(int(record_id) % 97),
                      report=f"synthetic report {record_id}", codes=["NORM"])  # fmt: skip


def _vm(field: str) -> int:
    """A /proc/self/status field in KiB (VmHWM = peak resident set, VmRSS = current)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _mem_child(n: int, preset: str, workers: int) -> None:
    """Run in a fresh process: convert n synthetic records, print peak memory as JSON."""
    import resource
    import tracemalloc

    from ecg_data.cache import build_cache

    reader = SyntheticReader(n)
    ids = [str(i) for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="ecg-bench-mem-") as tmp:
        try:  # reset the peak-RSS watermark so import-time peaks do not count (Linux >= 4.0)
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        rss_before = _vm("VmRSS")
        tracemalloc.start()
        t0 = time.perf_counter()
        split = build_cache(reader, ids, preset, out_dir=tmp, workers=workers, progress=False)
        seconds = time.perf_counter() - t0
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = int(split.signals.nbytes)
        del split
    out = {
        "records": n,
        "seconds": seconds,
        "array_mib": size / 2**20,
        "tracemalloc_peak_mib": traced_peak / 2**20,
        "peak_rss_delta_mib": (_vm("VmHWM") - rss_before) / 1024,
        "children_max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(out))


def memory_benchmark(args: argparse.Namespace) -> list[dict[str, float]]:
    rows = []
    for n in args.mem_records:
        cmd = [sys.executable, __file__, "--_mem-child", str(n), "--mem-preset", args.mem_preset,
               "--mem-workers", str(args.mem_workers)]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "ptbxl-500"), help="PTB-XL 1.0.3 root")
    p.add_argument("--preset", default="melp", help="cache preset (the baseline preprocesses like MELP)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts to compare")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs of the WFDB baseline per round")
    p.add_argument(
        "--cache-seconds", type=float, default=1.5, help="minimum timed seconds of each cache loader per round"
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="alternating baseline/cache timings; the median ratio is reported"
    )
    p.add_argument("--build-workers", type=int, default=None, help="build_cache workers (default min(4, cpus))")
    p.add_argument("--mem-records", type=int, nargs="*", default=[500, 5000])
    p.add_argument("--mem-preset", default="melp")
    p.add_argument("--mem-workers", type=int, default=1, help="1 = in-process, so one process holds all memory")
    p.add_argument("--skip-loader", action="store_true")
    p.add_argument("--_mem-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    if args._mem_child is not None:
        _mem_child(args._mem_child, args.mem_preset, args.mem_workers)
        return

    print(f"# data loading benchmark (torch {torch.__version__}, {os.cpu_count()} CPUs)")
    if not args.skip_loader:
        r = loader_benchmark(args)
        print(f"ptbxl-500 at {args.root}: {r['written']}/{r['records']} records cached with preset "
              f"{args.preset} in {r['build_s']:.1f} s (one-time, float32; the float16 twin is built too)")  # fmt: skip
        print(f"loader samples/s (batch {args.batch_size}, shuffle), {args.rounds} alternating rounds, median:")
        print(f"  {'workers':>7} {'wfdb per item':>14} {'landed f32':>11} {'batch f16':>10} {'batch/wfdb':>11} "
              f"{'batch/landed':>13} {'batch vs 0 workers':>19}")  # fmt: skip
        rounds = r["rounds"]
        for w in args.workers:
            med = {k: _median(rounds, lambda x, k=k, w=w: x[w, k]) for k in ("wfdb", "landed", "batch")}
            vs0 = _median(rounds, lambda x, w=w: x[w, "batch"] / x[args.workers[0], "batch"])
            per_wfdb = _median(rounds, lambda x, w=w: x[w, "batch"] / x[w, "wfdb"])
            per_landed = _median(rounds, lambda x, w=w: x[w, "batch"] / x[w, "landed"])
            print(f"  {w:>7} {med['wfdb']:>14.0f} {med['landed']:>11.0f} {med['batch']:>10.0f} "
                  f"{per_wfdb:>10.0f}x {per_landed:>12.1f}x {vs0:>18.2f}x")  # fmt: skip
        print("  per round (batch f16 samples/s by workers): "
              + "; ".join(", ".join(f"{x[w, 'batch']:.0f}" for w in args.workers) for x in rounds))  # fmt: skip
    if args.mem_records:
        print(f"conversion peak memory (synthetic random records, 12 x 5000 at 500 Hz, preset {args.mem_preset}, "
              f"workers={args.mem_workers}, fresh process each):")  # fmt: skip
        print(
            f"  {'records':>8} {'array MiB':>10} {'seconds':>8} {'tracemalloc peak MiB':>21} {'peak RSS delta MiB':>19}"
        )
        for m in memory_benchmark(args):
            print(f"  {m['records']:>8} {m['array_mib']:>10.0f} {m['seconds']:>8.1f} "
                  f"{m['tracemalloc_peak_mib']:>21.1f} {m['peak_rss_delta_mib']:>19.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
