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

log = logging.getLogger("ecgbench.eval_modes")

#: encoder batch size per mode where it is not the harness's default (beam search holds a beam per record)
BATCH_SIZE = {"report_generation": 32}


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
    ap.add_argument(
        "--method-config",
        help="the method's YAML (configs/method/<name>.yaml): its eval: block (e.g. its fine-tuning recipe) reaches "
        "the modes as the runner passes it; without it, the modes' defaults",
    )
    ap.add_argument(
        "--modes",
        default="retrieval,report_generation,transfer",
        help="comma list of registered modes (ecg_eval.modes), e.g. retrieval,report_generation,finetune,transfer",
    )
    ap.add_argument("--results", default="runs/leaderboard/results")
    ap.add_argument("--leaderboard", default="runs/leaderboard/README.md")
    ap.add_argument("--retrieval-task", default="synth_mimic")
    ap.add_argument("--report-task", default="synth_mimic")
    ap.add_argument(
        "--reference-file", help="published report split (e.g. MELP's ptbxl_test.csv) for report generation"
    )
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
    from ecg_eval.modes import get_mode, mode_names

    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in mode_names()]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; valid: {', '.join(mode_names())}")
    enc = _resolve(args.loader)(args.ckpt) if args.ckpt else _resolve(args.loader)()
    common = dict(results_root=args.results, method=args.method)
    method_eval = _method_eval(args.method_config)
    timings: dict[str, float] = {}
    for mode in modes:
        t0 = time.perf_counter()
        spec = get_mode(mode)
        # as the runner's eval.<mode> would give them, the method's eval.<mode> under the command line's
        options = spec.options_from_runner({**method_eval.get(mode, {}), **_options(args, mode)})
        if mode == "transfer" and "finetune" in method_eval:
            options.setdefault("finetune_config", method_eval["finetune"])
        for task, fraction, seed, cell_options in _cells(args, spec):
            evaluate(
                enc,
                get_task(task),
                mode,
                fraction,
                seed,
                batch_size=BATCH_SIZE.get(mode, 256),
                mode_options={**options, **cell_options} or None,
                **common,
            )
        timings[mode] = time.perf_counter() - t0
        log.info("%s: %.1f s", mode, timings[mode])
    out = publish(args.results, args.leaderboard, plot=False)
    log.info("done (%s); leaderboard %s", ", ".join(f"{m} {t:.0f} s" for m, t in timings.items()), out)
    return 0


def _method_eval(path: str | None) -> dict:
    """The ``eval:`` block of a method YAML (plain data), or {}; a file with Hydra ``defaults:`` (the paper sizes:
    ``merl_paper.yaml`` on ``merl.yaml``) gets the blocks of the files it names, from the same directory, first."""
    if not path:
        return {}
    from pathlib import Path

    from omegaconf import OmegaConf

    raw = OmegaConf.load(path)
    entries = list(raw.pop("defaults", None) or ["_self_"])
    parts = [
        raw.get("eval") or {} if str(e) == "_self_" else _method_eval(str(Path(path).parent / f"{e}.yaml"))
        for e in entries
    ]
    return OmegaConf.to_container(OmegaConf.merge(*parts))  # type: ignore[return-value]


def _options(args: argparse.Namespace, mode: str) -> dict:
    """The command line's options of a mode, in the runner's ``eval.<mode>`` form."""
    if mode == "report_generation":
        out: dict = {"beam_size": args.beam, "max_len": args.max_len}
        if args.reference_file:
            out["reference_file"] = args.reference_file
        return out
    return {}


def _cells(args: argparse.Namespace, spec) -> list[tuple[str, float | None, int, dict]]:
    """(task, fraction, seed, cell options) of one mode, planned as the mode's ``plan`` says (ecg_eval.modes)."""
    seeds = [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    tasks = {"retrieval": args.retrieval_task, "report_generation": args.report_task}.get(
        spec.name, args.finetune_tasks
    )
    if spec.plan == "per_corpus":
        return [(t, None, 0, {}) for t in tasks.split(",")]
    if spec.plan == "per_task":
        return [(t, None, s, {}) for t in tasks.split(",") for s in seeds]
    if spec.plan == "per_fraction":
        return [(t, f, s, {}) for t in tasks.split(",") for f in fractions for s in seeds]
    cells = []  # per_pair: source:target pairs x train modes
    for pair in args.transfer.split(","):
        src, tgt = pair.split(":")
        for tm in args.transfer_modes.split(","):
            for s in seeds:
                for f in [None] if tm == "zero_shot" else fractions:
                    cells.append((tgt, f, s, {"source": src, "train_mode": tm}))
    return cells


if __name__ == "__main__":
    raise SystemExit(main())
