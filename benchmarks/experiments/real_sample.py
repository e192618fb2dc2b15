"""The first real-data table: every method's synthetic-pretrained encoder (and random init), linearly probed
on the real PTB-XL sample (``../shared/data/ptbxl-500``: 500 records, ecg_id 1-500), ``ptbxl_super`` task,
folds 1-8 train / 9 val / 10 test. Question it answers: does pretraining on the synthetic corpus transfer
to real ECGs better than random weights?

Each method runs through the same pipeline as ``benchmarks/run.py`` (its pretraining is found again in the
run store when the tiny-preset synthetic run already made it), with the real sample as ``ptbxl/`` under a
data root made of one symlink. Results go to their own directory and table (never mixed with the full
PTB-XL rows of leaderboard/README.md); the table is titled with the sample size.

    python -m benchmarks.experiments.real_sample                                  # all methods, 100% probe, eval=quick
    python -m benchmarks.experiments.real_sample --methods merl random_init --fractions 0.1 1.0 --eval default
    python -m benchmarks.experiments.real_sample --override trainer.max_steps=20  # any benchmarks/run.py override
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

METHODS = ["melp", "merl", "esi", "heartlang", "random_init"]
log = logging.getLogger("ecgbench")


def data_root_for(sample: Path, where: Path) -> Path:
    """A data root whose ``ptbxl/`` is the sample (ecg_data expects ``<data_root>/ptbxl``)."""
    if not (sample / "ptbxl_database.csv").is_file():
        raise SystemExit(
            f"error: {sample} is not a PTB-XL directory (no ptbxl_database.csv); "
            "expected the official PhysioNet layout, e.g. ../shared/data/ptbxl-500"
        )
    root = where / "ptbxl500-root"
    root.mkdir(parents=True, exist_ok=True)
    link = root / "ptbxl"
    if link.is_symlink() and link.resolve() != sample.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(sample.resolve())
    return root


def compose(overrides: list[str]):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return hcompose("config", overrides=overrides)


def split_sizes(data_root: Path) -> dict[str, int]:
    from ecg_data.tasks import get_task

    task = get_task("ptbxl_super", root=data_root / "ptbxl")
    return {k: len(v) for k, v in task.splits.items()}


def shown_path(sample: Path) -> str:
    """The sample's path as a generated file names it: relative to the repository when it sits beside or inside it
    (``../shared/data/ptbxl-500``), else only its directory name; never the absolute path of the machine."""
    where = Path(os.path.abspath(sample))  # not resolve(): a ../shared that is a symlink is still shown as ../shared
    if where.is_relative_to(REPO.parent):
        return os.path.relpath(where, REPO)
    return where.name


def render(results_dir: Path, sizes: dict[str, int], sample: Path, fractions: list[float]) -> str:
    from ecg_eval.leaderboard import PROTOCOL_TITLES, load_results
    from ecg_eval.leaderboard import render as render_board

    body = render_board(load_results(results_dir), [])
    body = body.split("\n## ", 1)[1] if "\n## " in body else body  # drop the generic header
    # the sample is ptbxl_super by name, not the published benchmark: its cells carry the partial-coverage mark
    body = body.replace(
        f"### {PROTOCOL_TITLES['published']}",
        "### PTB-XL sample (a few hundred records: not the published benchmark, ◊ marks every cell)",
    )
    n = sum(sizes.values())
    head = [
        "<!-- GENERATED FILE: written by `python -m benchmarks.experiments.real_sample`; do not edit by hand. -->\n",
        f"# Real-data sample: PTB-XL `ptbxl_super`, n = {n} records with a super-class label (not the full benchmark)\n",
        f"Sample: `{shown_path(sample)}` (PTB-XL 1.0.3, ecg_id 1-500). Splits by `strat_fold`: folds 1-8 train "
        f"(n = {sizes.get('train', 0)}), 9 val (n = {sizes.get('val', 0)}), 10 test (n = {sizes.get('test', 0)}). "
        "Every encoder was pretrained on the synthetic corpus only (synth-mimic, tiny presets), except "
        "`random_init` (MELP's ECG tower, random weights). Linear probe on frozen features at "
        + ", ".join(f"{100 * f:g}%" for f in fractions)
        + " of the training folds. With a test set this small "
        "the 95% CIs are wide: read differences inside them as no difference.\n",
    ]
    return "\n".join(head) + "\n## " + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--sample", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl-500")
    ap.add_argument("--run-store", type=Path, default=Path("runs"))
    ap.add_argument("--results", type=Path, default=Path("leaderboard/results-ptbxl500"))
    ap.add_argument("--out", type=Path, default=Path("leaderboard/ptbxl500-sample.md"))
    ap.add_argument("--fractions", nargs="+", type=float, default=[1.0])
    ap.add_argument("--eval", default="quick", help="configs/eval preset (quick: 1 probe seed)")
    ap.add_argument("--override", action="append", default=[], help="extra benchmarks/run.py override (repeatable)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from benchmarks.pipeline import run

    data_root = data_root_for(args.sample, args.run_store)
    fr = "[" + ",".join(f"{f:g}" for f in args.fractions) + "]"
    for method in args.methods:
        cfg = compose(
            [
                f"method={method}",
                "dataset=ptbxl_super",
                f"data_root={data_root}",
                f"eval={args.eval}",
                f"eval.fractions={fr}",
                "stages=[pretrain,linear_probe]",
                f"run_store={args.run_store}",
                f"results_dir={args.results}",
                f"leaderboard_dir={args.out.parent}",
                *args.override,
            ]
        )
        log.info("== %s", method)
        run(cfg)
    from ecg_data.paths import atomic_write_text

    atomic_write_text(args.out, render(args.results, split_sizes(data_root), args.sample, args.fractions))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
