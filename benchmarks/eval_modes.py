"""Score a pretrained checkpoint with the evaluation modes beyond zero-shot and probes (docs/evaluation.md).

Why a separate entry point: ``benchmarks/run.py``'s stage list is owned by the runner; this script runs the new
modes on a checkpoint the runner (or anyone) produced, writes their result files next to the others and
re-renders the leaderboard. Defaults are the embedded synthetic corpus::

    python benchmarks/eval_modes.py --ckpt runs/.../checkpoints/last.ckpt --method melp
    python benchmarks/eval_modes.py --ckpt ... --modes retrieval,report_generation --retrieval-task mimic_iv_ecg
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("ecgbench.eval_modes")

MODES = ("retrieval", "report_generation", "finetune", "transfer")


def _resolve(target: str):
    """'package.module.Class.method' -> the attribute (ecg_text_align.components.locate)."""
    from ecg_text_align.components import locate

    try:
        return locate(target)
    except ImportError as e:
        raise SystemExit(f"cannot import {target}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="checkpoint path passed to --loader")
    ap.add_argument("--loader", default="ecg_text_align.module.PretrainModule.from_checkpoint")
    ap.add_argument("--method", required=True, help="results name (the leaderboard row)")
    ap.add_argument("--modes", default="retrieval,report_generation,transfer", help=f"comma list of {MODES}")
    ap.add_argument("--results", default="runs/leaderboard/results")
    ap.add_argument("--leaderboard", default="runs/leaderboard/README.md")
    ap.add_argument("--retrieval-task", default="synth_mimic")
    ap.add_argument("--report-task", default="synth_mimic")
    ap.add_argument("--reference-file", help="published report split (e.g. MELP's ptbxl_test.csv) for report generation")
    ap.add_argument("--finetune-tasks", default="synth_ptbxl_super")
    ap.add_argument("--fractions", default="0.01")
    ap.add_argument("--transfer", default="synth_ptbxl_all:synth_cpsc2018", help="comma list of source:target")
    ap.add_argument("--transfer-modes", default="linear_probe,zero_shot")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=40)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from ecg_data.tasks import get_task
    from ecg_eval.harness import evaluate
    from ecg_eval.leaderboard import publish
    from ecg_eval.transfer import evaluate_transfer

    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; valid: {', '.join(MODES)}")
    enc = _resolve(args.loader)(args.ckpt) if args.ckpt else _resolve(args.loader)()
    seeds = [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    common = dict(results_root=args.results, method=args.method)
    timings: dict[str, float] = {}
    for mode in modes:
        t0 = time.perf_counter()
        if mode == "retrieval":
            evaluate(enc, get_task(args.retrieval_task), "retrieval", **common)
        elif mode == "report_generation":
            opts = {"generate_kw": {"beam_size": args.beam, "max_len": args.max_len}}
            if args.reference_file:
                opts["reference_file"] = args.reference_file
            evaluate(enc, get_task(args.report_task), "report_generation", batch_size=32, mode_options=opts, **common)
        elif mode == "finetune":
            for task in args.finetune_tasks.split(","):
                for f in fractions:
                    for s in seeds:
                        evaluate(enc, get_task(task), "finetune", f, s, **common)
        else:
            for pair in args.transfer.split(","):
                src, tgt = (get_task(t) for t in pair.split(":"))
                for tm in args.transfer_modes.split(","):
                    for s in seeds:
                        for f in ([None] if tm == "zero_shot" else fractions):
                            evaluate_transfer(enc, src, tgt, tm, f, s, **common)
        timings[mode] = time.perf_counter() - t0
        log.info("%s: %.1f s", mode, timings[mode])
    out = publish(args.results, args.leaderboard, plot=False)
    log.info("done (%s); leaderboard %s", ", ".join(f"{m} {t:.0f} s" for m, t in timings.items()), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
