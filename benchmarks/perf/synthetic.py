"""Synthetic-corpus generation speed on one core: records/s for 12 x 5000-sample records.

Target (issue "embedded default"): 10,000 records in under 60 s on one core. The baseline measured in
the same run is the straightforward renderer that evaluates every Gaussian wave on the whole time axis
(``model.render_waves_full``) in place of the windowed, bincount-scattered one; the ratio is printed.

    python -m benchmarks.perf.synthetic            # 400 records (about 5 s), baseline on 100
    python -m benchmarks.perf.synthetic --n 10000  # the full target
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from unittest import mock  # noqa: E402

from ecg_data.synthetic import generate_records, model  # noqa: E402


def rate(n: int, seed: int) -> tuple[float, float]:
    """(records per second, seconds) for generating ``n`` records."""
    t0 = time.perf_counter()
    for rec in generate_records(n, seed):
        assert rec.signal.shape == (12, 5000)
    dt = time.perf_counter() - t0
    return n / dt, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="records to generate with the real renderer")
    ap.add_argument("--n-baseline", type=int, default=100, help="records to generate with the baseline renderer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rate(20, args.seed + 1)  # warm-up (imports, caches)
    with mock.patch.object(model, "render_waves", model.render_waves_full):
        base_rps, _ = rate(args.n_baseline, args.seed)
    rps, secs = rate(args.n, args.seed)
    print("records: 12 leads x 5000 samples (10 s at 500 Hz), difficulty=default, one core")
    print(f"baseline (full-axis Gaussians): {base_rps:8.1f} records/s  ({args.n_baseline} records)")
    print(f"generator (windowed, bincount):  {rps:8.1f} records/s  ({args.n} records in {secs:.1f} s)")
    print(f"speed-up over baseline: {rps / base_rps:.2f}x")
    print(f"time for 10,000 records: {10000 / rps:.1f} s (target < 60 s: {'met' if 10000 / rps < 60 else 'NOT met'})")


if __name__ == "__main__":
    main()
