"""Render leaderboard/README.md (and probe plots) from the result files.

python benchmarks/publish.py [--results leaderboard/results] [--out leaderboard/README.md]
                             [--reference leaderboard/reference.yaml] [--no-plot]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_data.paths import exclusive_lock
from ecg_eval.leaderboard import publish

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=REPO / "leaderboard" / "results")
    ap.add_argument("--out", type=Path, default=REPO / "leaderboard" / "README.md")
    ap.add_argument("--reference", type=Path, default=REPO / "leaderboard" / "reference.yaml")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG of the probe results")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(args.out.with_name(f".{args.out.name}.lock")):  # one publisher at a time (parallel jobs)
        out = publish(args.results, args.out, reference=args.reference, plot=not args.no_plot)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
