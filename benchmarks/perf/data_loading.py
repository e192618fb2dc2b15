"""Training-loader throughput: the memmap record cache versus reading WFDB files per item.

The baseline is what the original MELP code does in ``__getitem__`` (HKU-MedAI/MELP
src/melp/datasets/finetune_dataset.py): ``wfdb.rdsamp`` the record, ``[:, :5000]``, global min-max.
The cache path is ``build_cache`` once, then ``CachedECGDataset`` + ``DataLoader``. Both loaders use
the same batch size, shuffling and number of workers, and are measured in the same run, each on a
warm OS page cache (one untimed epoch first), so the ratio compares loading code, not disk.

Second part: peak memory of converting a split, for 500 and 5,000 records, each in a fresh
subprocess. Those records come from a synthetic reader producing random 12 x 5000 signals at
500 Hz (PTB-XL-500 has only 500 records); the conversion is the same code path.

    python benchmarks/perf/data_loading.py                       # < 2 min: ptbxl-500 + memory for 500/5000
    python benchmarks/perf/data_loading.py --root PATH --epochs 3 --num-workers 2 --mem-records 500 5000 20000
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


def _rate(loader: DataLoader, min_epochs: int, min_seconds: float) -> float:
    """Samples per second over at least ``min_epochs`` epochs and ``min_seconds`` seconds."""
    n, epochs, t0 = 0, 0, time.perf_counter()
    while epochs < min_epochs or time.perf_counter() - t0 < min_seconds:
        for batch in loader:
            n += int(batch["ecg"].shape[0])
        epochs += 1
    return n / (time.perf_counter() - t0)


def loader_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Both loaders warm (one untimed epoch each), then ``rounds`` alternating timings; the median ratio.

    Alternating rounds keep a shared machine's changing load from favouring one side.
    """
    from ecg_data.cache import build_cache
    from ecg_data.readers import get_reader
    from ecg_data.torch_datasets import CachedECGDataset

    reader = get_reader("ptbxl", args.root, fs=500)
    meta = reader.metadata()
    ids = meta.index.tolist()
    reports = ["" if r is None else str(r) for r in meta["report"]]

    with tempfile.TemporaryDirectory(prefix="ecg-bench-cache-") as tmp:
        t0 = time.perf_counter()
        split = build_cache(reader, ids, args.preset, out_dir=tmp, workers=args.build_workers, progress=False)
        build_s = time.perf_counter() - t0
        cache_loader = _loader(CachedECGDataset(split), args)
        wfdb_loader = _loader(WfdbPerItemDataset(Path(args.root), meta["path"].tolist(), reports), args)
        for loader in (cache_loader, wfdb_loader):
            _rate(loader, 1, 0.0)  # warm-up: page cache, worker start
        rounds = []
        for _ in range(args.rounds):
            base = _rate(wfdb_loader, args.epochs, 0.0)
            cached = _rate(cache_loader, 3, args.cache_seconds)
            rounds.append((cached, base))
    ratios = sorted(c / b for c, b in rounds)
    return {"records": len(ids), "written": len(split), "build_s": build_s, "rounds": rounds,
            "median_ratio": float(np.median(ratios)), "min_ratio": ratios[0]}  # fmt: skip


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
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers, the same for both loaders")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs of the WFDB baseline per round")
    p.add_argument("--cache-seconds", type=float, default=2.0, help="minimum timed seconds of the cache loader per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating baseline/cache timings; the median ratio is reported")
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
              f"{args.preset} in {r['build_s']:.1f} s (one-time)")  # fmt: skip
        print(f"loader samples/s (batch {args.batch_size}, shuffle, num_workers={args.num_workers}), alternating rounds:")
        print(f"  {'round':>5} {'wfdb per item (MELP)':>21} {'memmap cache':>13} {'ratio':>6}")
        for k, (c, b) in enumerate(r["rounds"], 1):
            print(f"  {k:>5} {b:>21.0f} {c:>13.0f} {c / b:>5.0f}x")
        print(f"  ratio cache / wfdb: median {r['median_ratio']:.0f}x, lowest {r['min_ratio']:.0f}x (target >= 50x)")
    if args.mem_records:
        print(f"conversion peak memory (synthetic random records, 12 x 5000 at 500 Hz, preset {args.mem_preset}, "
              f"workers={args.mem_workers}, fresh process each):")  # fmt: skip
        print(f"  {'records':>8} {'array MiB':>10} {'seconds':>8} {'tracemalloc peak MiB':>21} {'peak RSS delta MiB':>19}")
        for m in memory_benchmark(args):
            print(f"  {m['records']:>8} {m['array_mib']:>10.0f} {m['seconds']:>8.1f} "
                  f"{m['tracemalloc_peak_mib']:>21.1f} {m['peak_rss_delta_mib']:>19.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
