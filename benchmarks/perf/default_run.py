#!/usr/bin/env python
"""The embedded default, timed and read: does a fresh clone's first table show the method learning?

Runs ``benchmarks/run.py`` (any extra arguments are passed on, e.g. ``method=merl``) into a fresh run store and a
fresh ``$ECG_CACHE`` (so corpus generation and caches are timed too, as on a new clone), then reads the result files
and prints, beside the baselines measured in the same run (the chance and oracle reference rows, the trivial report
baselines, the retrieval chance values):

- the wall time of the whole run (target: at most 10 minutes on 2 idle cores);
- zero-shot macro AUROC per synthetic task and its mean (targets: mean >= 75, every task >= 65 for MELP; mean >= 70
  for MERL and ESI);
- retrieval Recall@10 in both directions as a multiple of its chance value (target >= 3x);
- report generation: statement F1 against the "nearest training report" and "most frequent report" baselines
  (target: above the nearest training report).

    python -m benchmarks.perf.default_run                 # MELP, the README's command
    python -m benchmarks.perf.default_run method=merl --json merl.json
    python -m benchmarks.perf.default_run --keep /tmp/run  # keep the run store (logs, learning curve) there

``--cache DIR`` reuses a corpus/record cache (then the time excludes generating it: say so when reporting).
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

REPO = Path(__file__).resolve().parents[2]
TASKS = ("synth_ptbxl_super", "synth_ptbxl_sub", "synth_ptbxl_form", "synth_ptbxl_rhythm", "synth_cpsc2018")
TARGETS = {
    "melp": {"minutes": 10, "zs_mean": 75, "zs_task": 65, "recall_x": 3.0, "report_f1": "nearest"},
    "merl": {"minutes": 10, "zs_mean": 70},
    "esi": {"minutes": 10, "zs_mean": 70},
}


def _read(path: Path) -> dict | None:
    from ecg_eval.results import read_result  # result files are read only through ecg_eval.results

    return read_result(path) if path.is_file() else None


def summarise(results: Path, method: str) -> dict:
    """The figures the targets name, for ``method`` and the reference rows, from the run's result files."""
    out: dict = {"method": method, "zero_shot": {}, "references": {}}
    base = results / "synthetic"
    for row in (method, "oracle", "chance"):
        zs = {}
        for t in TASKS:
            r = _read(base / row / t / "zero_shot-seed0.json")
            if r and r.get("status") == "ok":
                zs[t] = round(100 * r["scores"]["macro_auroc"], 1)
        entry = {
            "zero_shot": zs,
            "zero_shot_mean": round(sum(zs.values()) / len(zs), 1) if len(zs) == len(TASKS) else None,
        }
        ret = _read(base / row / "synth_mimic" / "retrieval-seed0.json")
        if ret and ret.get("status") == "ok":
            entry["retrieval"] = {
                d: {
                    "recall@10": round(100 * ret["scores"][d]["recall@10"], 1),
                    "chance@10": round(100 * ret["scores"][d]["chance"]["recall@10"], 1),
                    "x_chance": round(ret["scores"][d]["recall@10"] / ret["scores"][d]["chance"]["recall@10"], 2),
                }
                for d in ("ecg_to_report", "report_to_ecg")
            }
        gen = _read(base / row / "synth_mimic" / "report_generation-seed0.json")
        if gen and gen.get("status") == "ok":
            s = gen["scores"]
            entry["report_generation"] = {
                "statement_f1": round(100 * s["model"]["clinical"]["macro_f1"], 1),
                "nearest_training_report": round(100 * s["baselines"]["nearest_neighbour"]["clinical"]["macro_f1"], 1),
                "most_frequent_report": round(100 * s["baselines"]["most_frequent"]["clinical"]["macro_f1"], 1),
            }
        if row == method:
            out.update(entry)
        else:
            out["references"][row] = entry
    return out


def check(summary: dict, minutes: float) -> list[str]:
    """Each target of the method, met or not, as lines."""
    tgt = TARGETS.get(summary["method"].split("-pt")[0], {})
    lines = [
        f"wall time {minutes:.1f} min (target <= {tgt.get('minutes', 10)}): "
        f"{'met' if minutes <= tgt.get('minutes', 10) else 'NOT met'}"
    ]
    mean = summary.get("zero_shot_mean")
    if "zs_mean" in tgt:
        ok = mean is not None and mean >= tgt["zs_mean"]
        lines.append(f"zero-shot mean {mean} (target >= {tgt['zs_mean']}): {'met' if ok else 'NOT met'}")
    if "zs_task" in tgt:
        low = min(summary["zero_shot"].values()) if summary["zero_shot"] else None
        ok = low is not None and low >= tgt["zs_task"]
        lines.append(f"lowest task {low} (target >= {tgt['zs_task']}): {'met' if ok else 'NOT met'}")
    if "recall_x" in tgt and "retrieval" in summary:
        for d, r in summary["retrieval"].items():
            ok = r["x_chance"] >= tgt["recall_x"]
            lines.append(
                f"{d} R@10 {r['recall@10']} = {r['x_chance']}x chance {r['chance@10']} "
                f"(target >= {tgt['recall_x']}x): {'met' if ok else 'NOT met'}"
            )
    if "report_f1" in tgt and "report_generation" in summary:
        g = summary["report_generation"]
        ok = g["statement_f1"] > g["nearest_training_report"]
        lines.append(
            f"statement F1 {g['statement_f1']} vs nearest training report {g['nearest_training_report']} "
            f"(most frequent {g['most_frequent_report']}): {'met' if ok else 'NOT met'}"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("overrides", nargs="*", help="passed to benchmarks/run.py (e.g. method=merl)")
    ap.add_argument("--keep", type=Path, help="run store to keep (default: a temporary directory, removed)")
    ap.add_argument("--cache", type=Path, help="reuse this $ECG_CACHE (default: a fresh one, as on a new clone)")
    ap.add_argument("--json", type=Path, help="write the summary here")
    args = ap.parse_intermixed_args()
    method = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("method=")), "melp")
    with tempfile.TemporaryDirectory(prefix="ecgbench-default-") as tmp:
        store = args.keep or Path(tmp) / "runs"
        env = {**os.environ, "ECG_CACHE": str(args.cache or Path(tmp) / "cache")}
        cmd = [sys.executable, str(REPO / "benchmarks" / "run.py"), f"run_store={store}", *args.overrides]
        print("running:", " ".join(cmd[1:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env)
        minutes = (time.perf_counter() - t0) / 60
        if proc.returncode != 0:
            sys.exit(f"benchmarks/run.py failed with exit code {proc.returncode}")
        summary = summarise(store / "leaderboard" / "results", method)
    summary["wall_minutes"] = round(minutes, 2)
    summary["checks"] = check(summary, minutes)
    print(json.dumps({k: v for k, v in summary.items() if k != "checks"}, indent=1))
    print("\n".join(summary["checks"]))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
