"""Cache build at MIMIC-IV-ECG scale, measured on the project's synthetic MIMIC-IV-ECG corpus.

Generates (once, into ``$ECG_CACHE/synthetic``, never into the repository) the ``synth-mimic`` corpus
of ``--records`` records with ``ecg_data.synthetic`` (the real MIMIC-IV-ECG layout and reader), damages
a few records reversibly (a missing ``.dat``, a truncated ``.dat``, a garbage ``.hea``, spread over the
corpus; restored at the end), and builds the cache of the first ``--small`` and of all records in
fresh subprocesses, each with ``--workers`` processes. The full build is interrupted (SIGINT) after
``--interrupt-after`` seconds and rerun, which resumes it. Reports records/s (per worker core), peak
RSS of the main process and of the largest worker, main-process CPU share, the QC skips, and the
projection to 800,000 records on 16 cores.

    ECG_CACHE=/tmp/ecgcache python benchmarks/perf/cache_build.py                  # 50,000 records, 2 workers
    ECG_CACHE=/tmp/ecgcache python benchmarks/perf/cache_build.py --records 800000 --workers 16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MIMIC_RECORDS = 800_000


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _child(args: argparse.Namespace) -> None:
    """One build in this fresh process; prints a JSON line with rate, memory and QC."""
    import logging

    from ecg_data.cache import build_cache
    from ecg_data.readers import get_reader

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    reader = get_reader("mimic_iv_ecg", args.root)
    ids = reader.metadata().index.tolist()[: args._child]
    from ecg_data.cache import cache_dir_for
    from ecg_data.preprocess import get_preset

    progress = cache_dir_for(reader, ids, get_preset(args.preset), args.out, args.storage) / "progress.json"
    resumed_from = min(len(ids), json.loads(progress.read_text())["chunks_done"] * 64) if progress.is_file() else 0
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    split = build_cache(reader, ids, args.preset, out_dir=args.out, workers=args.workers, storage=args.storage,
                        progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s = split.meta["summary"]
    print(json.dumps({
        "records": len(ids), "resumed_from": resumed_from, "wall_s": wall, "written": s["written"], "skipped": s["skipped"],
        "skipped_by_reason": s["skipped_by_reason"], "bytes": int(split.signals.nbytes),
        "main_cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "main_peak_rss_mib": _vm("VmHWM") / 1024,
        "worker_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))  # fmt: skip


def _run(args: argparse.Namespace, n: int, interrupt_after: float | None = None) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--_child", str(n), "--root", str(args.root), "--out", str(args.out),
           "--workers", str(args.workers), "--preset", args.preset, "--storage", args.storage]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=interrupt_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C / a preempted job: the next run resumes
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"build of {n} records failed:\n{err[-3000:]}")
    for line in err.splitlines():
        if "records/s" in line or "records written" in line or "resuming" in line:
            print("   ", line.strip()[:200])
    return json.loads(out.strip().splitlines()[-1])


def damage(root: Path, n: int) -> list[tuple[Path, Path | None]]:
    """Break 6 records reversibly (missing .dat x2, truncated .dat x2, garbage .hea x2); returns how to undo."""
    import pandas as pd

    paths = pd.read_csv(root / "record_list.csv", usecols=["path"])["path"].tolist()[:n]
    picks = [paths[int(f * (len(paths) - 1))] for f in (0.001, 0.3, 0.5, 0.7, 0.9, 0.999)]
    undo: list[tuple[Path, Path | None]] = []
    for k, rel in enumerate(picks):
        base = root / rel
        target = base.with_suffix(".dat") if k < 4 else base.with_suffix(".hea")
        backup = target.with_name(target.name + ".bench-backup")
        shutil.copy2(target, backup)
        undo.append((target, backup))
        if k < 2:
            target.unlink()
        elif k < 4:
            target.write_bytes(target.read_bytes()[:1000])
        else:
            target.write_bytes(b"\x00\xff not a header \xfe\n" * 3)
    return undo


def restore(undo: list[tuple[Path, Path | None]]) -> None:
    for target, backup in undo:
        if backup is not None and backup.exists():
            os.replace(backup, target)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=50_000)
    p.add_argument("--small", type=int, default=5_000, help="a smaller build from the same corpus, for memory vs N")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--preset", default="melp")
    p.add_argument("--storage", default="float16")
    p.add_argument("--interrupt-after", type=float, default=45.0, help="SIGINT the full build after this many s (0: no)")
    p.add_argument("--keep", action="store_true", help="keep the built caches (the corpus is always kept)")
    p.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child is not None:
        _child(args)
        return

    from ecg_data.paths import cache_root
    from ecg_data.synthetic import ensure_preset

    if "ECG_CACHE" not in os.environ:
        print(f"note: $ECG_CACHE not set; the corpus goes to {cache_root()}")
    t0 = time.perf_counter()
    args.root = ensure_preset("synth-mimic", n=args.records)
    print(f"# cache build: synth-mimic corpus of {args.records} records at {args.root} "
          f"({time.perf_counter() - t0:.0f} s to generate or find); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    args.out = cache_root() / "bench-cache-build"
    shutil.rmtree(args.out, ignore_errors=True)
    undo = damage(args.root, args.records)
    try:
        small = _run(args, args.small)
        if args.interrupt_after > 0:
            t1 = time.perf_counter()
            _run(args, args.records, interrupt_after=args.interrupt_after)
            print(f"  full build interrupted with SIGINT after {time.perf_counter() - t1:.0f} s; rerunning (resumes)")
        full = _run(args, args.records)
    finally:
        restore(undo)
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)
    assert small is not None and full is not None
    print(f"  {'records':>8} {'wall s':>8} {'rec/s':>7} {'rec/s/worker':>13} {'main CPU %':>11} "
          f"{'main peak RSS MiB':>18} {'worker peak RSS MiB':>20} {'GiB':>6} {'skipped':>8}")  # fmt: skip
    for r in (small, full):
        rate = (r["records"] - r["resumed_from"]) / r["wall_s"]
        print(f"  {r['records']:>8} {r['wall_s']:>8.0f} {rate:>7.0f} {rate / args.workers:>13.1f} "
              f"{100 * r['main_cpu_s'] / r['wall_s']:>10.0f}% {r['main_peak_rss_mib']:>18.0f} "
              f"{r['worker_peak_rss_mib']:>20.0f} {r['bytes'] / 2**30:>6.2f} {r['skipped']:>8}")  # fmt: skip
    print(f"  skipped by reason (full build): {full['skipped_by_reason']}")
    print(f"  the full build resumed at record {full['resumed_from']}; its wall time and rate cover the rest")
    per_core = (full["records"] - full["resumed_from"]) / full["wall_s"] / args.workers
    hours = MIMIC_RECORDS / (per_core * 16) / 3600
    print(f"  projection: {MIMIC_RECORDS} records on 16 cores at {per_core:.1f} records/s per core = {hours:.2f} h "
          f"({hours * 60:.0f} min), if the disk keeps up ({MIMIC_RECORDS * full['bytes'] / full['written'] / 1e9:.0f} GB "
          f"written)")  # fmt: skip


if __name__ == "__main__":
    main()
