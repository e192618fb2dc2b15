"""Score a pretrained checkpoint with the evaluation modes beyond zero-shot and probes (docs/evaluation.md).

Why a separate entry point: ``benchmarks/run.py``'s stage list is owned by the runner; this script runs the new
modes on a checkpoint the runner (or anyone) produced, writes their result files next to the others and
re-renders the leaderboard. Defaults are the embedded synthetic corpus::

    python benchmarks/eval_modes.py --ckpt runs/.../checkpoints/last.ckpt --method melp
    python benchmarks/eval_modes.py --ckpt ... --modes retrieval,report_generation --retrieval-tasks mimic_iv_ecg

The per-mode options come from the mode registry (``ecg_eval.modes``), for every registered mode (``--mode-module
my_mode`` registers one of yours first): ``--<mode>-tasks`` (``--<mode>-pairs`` and ``--<mode>-train-modes`` for a
mode planned per source:target pair), ``--<mode>-<option>`` for each of its declared ``cli_options`` (e.g.
``--report-generation-beam-size``), and ``--<mode>-batch-size`` (its declared ``batch_size``, else 256).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("ecgbench.eval_modes")

#: the planning options a mode's plan reads (``ecg_eval.modes.PLANS``), with the embedded synthetic corpus' defaults
PLAN_OPTIONS = {
    "per_task": {"tasks": "synth_ptbxl_super"},
    "per_fraction": {"tasks": "synth_ptbxl_super"},
    "per_corpus": {"tasks": "synth_mimic"},
    "per_pair": {"pairs": "synth_ptbxl_all:synth_cpsc2018", "train_modes": "linear_probe,zero_shot"},
}
DEFAULT_BATCH_SIZE = 256


def _resolve(target: str):
    """'package.module.Class.method' -> the attribute (ecg_text_align.components.locate)."""
    from ecg_text_align.components import locate

    try:
        return locate(target)
    except ImportError as e:
        raise SystemExit(f"cannot import {target}: {e}") from None


def _flag(mode: str, key: str) -> str:
    return f"--{mode}-{key}".replace("_", "-")


def _dest(mode: str, key: str) -> str:
    return f"{mode}__{key}"


def add_mode_arguments(ap: argparse.ArgumentParser) -> None:
    """One group of options per registered mode, derived from its declaration (plan, ``cli_options``, batch size)."""
    from ecg_eval.modes import all_modes

    for spec in all_modes():
        group = ap.add_argument_group(spec.name)
        for key, default in PLAN_OPTIONS[spec.plan].items():
            group.add_argument(_flag(spec.name, key), dest=_dest(spec.name, key), default=default, metavar=key.upper(),
                               help=f"comma list (default {default})")  # fmt: skip
        for name, typ, default, text in spec.cli_options:
            group.add_argument(
                _flag(spec.name, name), dest=_dest(spec.name, name), type=typ, default=default, help=text
            )
        batch = spec.batch_size or DEFAULT_BATCH_SIZE
        group.add_argument(_flag(spec.name, "batch_size"), dest=_dest(spec.name, "batch_size"), type=int, default=batch, metavar="N",
                           help=f"encoder batch size (default {batch})")  # fmt: skip


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; ``--mode-module`` modules are imported first, so the modes they register get options."""
    import importlib

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--mode-module", action="append", default=[])
    for name in pre.parse_known_args(argv)[0].mode_module:
        importlib.import_module(name)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode-module", action="append", default=[], help="a module that registers modes (repeatable)")
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
    ap.add_argument("--fractions", default="0.01")
    ap.add_argument("--seeds", default="0")
    add_mode_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
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
    sections = eval_sections(args, modes)
    timings: dict[str, float] = {}
    for mode in modes:
        t0 = time.perf_counter()
        spec = get_mode(mode)
        options = spec.options_from_runner(sections.get(mode))  # as the runner's eval.<mode> would give them
        for task, fraction, seed, cell_options in cells(args, spec):
            evaluate(
                enc,
                get_task(task),
                mode,
                fraction,
                seed,
                batch_size=getattr(args, _dest(mode, "batch_size")),
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
    from omegaconf import OmegaConf

    raw = OmegaConf.load(path)
    entries = list(raw.pop("defaults", None) or ["_self_"])
    parts = [
        raw.get("eval") or {} if str(e) == "_self_" else _method_eval(str(Path(path).parent / f"{e}.yaml"))
        for e in entries
    ]
    return OmegaConf.to_container(OmegaConf.merge(*parts))  # type: ignore[return-value]


def eval_sections(args: argparse.Namespace, modes: list[str]) -> dict[str, dict]:
    """``eval.<mode>`` as the runner holds it: the command line's options (and a per-pair mode's train modes), with
    the ``--method-config`` YAML's ``eval:`` block merged under them by the runner's own ``apply_method_eval`` (so
    transfer's finetune train mode gets the method's recipe exactly when the runner would give it)."""
    from omegaconf import OmegaConf

    from benchmarks.pipeline.runner import apply_method_eval
    from ecg_eval.modes import get_mode

    sections: dict[str, dict] = {}
    for mode in modes:
        spec = get_mode(mode)
        sections[mode] = mode_options(args, spec)
        if spec.plan == "per_pair":
            sections[mode]["train_modes"] = getattr(args, _dest(mode, "train_modes")).split(",")
    name = Path(args.method_config).stem if args.method_config else args.method
    cfg = OmegaConf.create({"method": {"name": name, "eval": _method_eval(args.method_config)}, "eval": sections})
    apply_method_eval(cfg)
    return OmegaConf.to_container(cfg.eval)  # type: ignore[return-value]


def mode_options(args: argparse.Namespace, spec) -> dict:
    """The command line's options of a mode (its declared ``cli_options`` that are set), in the runner's
    ``eval.<mode>`` form."""
    values = {name: getattr(args, _dest(spec.name, name)) for name, *_ in spec.cli_options}
    return {k: v for k, v in values.items() if v is not None}


def cells(args: argparse.Namespace, spec) -> list[tuple[str, float | None, int, dict]]:
    """(task, fraction, seed, cell options) of one mode, planned as the mode's ``plan`` says (ecg_eval.modes)."""
    seeds = [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    if spec.plan == "per_pair":  # source:target pairs x train modes
        out = []
        for pair in getattr(args, _dest(spec.name, "pairs")).split(","):
            src, tgt = pair.split(":")
            for tm in getattr(args, _dest(spec.name, "train_modes")).split(","):
                for s in seeds:
                    for f in [None] if tm == "zero_shot" else fractions:
                        out.append((tgt, f, s, {"source": src, "train_mode": tm}))
        return out
    tasks = [t for t in getattr(args, _dest(spec.name, "tasks")).split(",") if t]
    if spec.plan == "per_corpus":
        return [(t, None, 0, {}) for t in tasks]
    if spec.plan == "per_task":
        return [(t, None, s, {}) for t in tasks for s in seeds]
    return [(t, f, s, {}) for t in tasks for f in fractions for s in seeds]  # per_fraction


if __name__ == "__main__":
    raise SystemExit(main())
